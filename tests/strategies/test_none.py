"""none: the zero-shot reference does not train."""

from negbench.strategies.none import NoTraining


def test_does_not_train():
    assert NoTraining.trains is False
    assert NoTraining.name == "none"
