"""Result stores: one typed row (:mod:`.row`), the directory's files (:mod:`.base`), Parquet and SQL backends."""

from negbench.run.store.base import RowStore, StoreFiles
from negbench.run.store.parquet import ResultStore
from negbench.run.store.row import COLUMNS, ResultRow, RunArtifacts

__all__ = ["COLUMNS", "ResultRow", "ResultStore", "RowStore", "RunArtifacts", "StoreFiles"]
