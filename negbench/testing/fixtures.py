"""Offline test fixtures: a tiny randomly initialised encoder and a toy BEIR-layout corpus.

Both are built in-process (nothing is downloaded), so plugin authors can run the conformance tests too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["TOPICS", "build_tiny_encoder", "write_toy_beir"]

TOPICS = [
    "protein enzyme cell membrane receptor binding kinase",
    "galaxy star orbit planet telescope gravity comet",
    "market stock price inflation bank interest bond",
    "football goal match league player coach stadium",
    "river mountain forest glacier valley lake rain",
    "compiler python function memory thread cache kernel",
    "vaccine virus infection immune antibody fever dose",
    "violin piano melody rhythm orchestra concert song",
]


def write_toy_beir(
    root: str | Path, *, docs_per_topic: int = 16, seed: int = 0, test_queries: int = 24, words_per_doc: int = 12
) -> Path:
    """Write a small BEIR directory: topical documents, one query per document (a subset of its words).

    Documents of one topic share vocabulary, so neighbours are hard negatives and a tiny encoder can
    learn something. Every document gets a distinctive token so each query has exactly one answer.
    """
    root = Path(root)
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    corpus, queries, qrels = [], [], []
    n = 0
    for t, topic in enumerate(TOPICS):
        words = topic.split()
        for j in range(docs_per_topic):
            tag = f"item{t}x{j}"
            body = " ".join(rng.choice(words, size=words_per_doc))
            corpus.append({"_id": f"d{n}", "title": f"{words[0]} {tag}", "text": f"{body} {tag}"})
            q_words = " ".join(rng.choice(words, size=3))
            queries.append({"_id": f"q{n}", "text": f"{q_words} {tag}"})
            qrels.append((f"q{n}", f"d{n}"))
            n += 1
    order = rng.permutation(n)
    test_ids = set(order[:test_queries].tolist())
    with (root / "corpus.jsonl").open("w") as fh:
        fh.writelines(json.dumps(d) + "\n" for d in corpus)
    with (root / "queries.jsonl").open("w") as fh:
        fh.writelines(json.dumps(q) + "\n" for q in queries)
    for split, keep in (("train", lambda i: i not in test_ids), ("test", lambda i: i in test_ids)):
        with (root / "qrels" / f"{split}.tsv").open("w") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            fh.writelines(f"{q}\t{d}\t1\n" for i, (q, d) in enumerate(qrels) if keep(i))
    return root


def build_tiny_encoder(
    path: str | Path, texts: list[str] | None = None, *, dim: int = 32, layers: int = 2, seed: int = 0
) -> Path:
    """Save a tiny random BERT + mean pooling + normalisation as a sentence-transformers model at ``path``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    path = Path(path)
    hf_dir = path.parent / f".{path.name}-hf"
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    corpus = texts or [" ".join(TOPICS)] + [f"item{t}x{j}" for t in range(8) for j in range(64)]
    # A fixed, sorted vocabulary (whole words, characters, continuation characters): the same token ids in
    # every process, unlike a trained WordPiece vocabulary.
    words = sorted({w for text in corpus for w in text.lower().split()})
    chars = sorted({c for w in words for c in w} | set("abcdefghijklmnopqrstuvwxyz0123456789"))
    vocab_list = specials + words + [c for c in chars if c not in words] + [f"##{c}" for c in chars]
    tok = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(vocab_list)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=dim,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * dim,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(hf_dir)
    fast.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(dim, "mean"), Normalize()], device="cpu")
    model.save(str(path))
    return path
