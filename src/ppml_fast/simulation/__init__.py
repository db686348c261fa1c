"""Federated-learning simulation (see :mod:`.models`)."""

from __future__ import annotations

from .models import (
    DPSGD,
    MLP,
    Aggregator,
    DPFedAvg,
    Dataset,
    FedAvg,
    LogisticRegression,
    Model,
    PaillierAggregation,
    RoundRecord,
    SecureAggregation,
    SimulationResult,
    dirichlet_partition,
    history_table,
    iid_partition,
    load_dataset,
    plot,
    run_simulation,
)

__all__ = [
    "DPSGD",
    "MLP",
    "Aggregator",
    "DPFedAvg",
    "Dataset",
    "FedAvg",
    "LogisticRegression",
    "Model",
    "PaillierAggregation",
    "RoundRecord",
    "SecureAggregation",
    "SimulationResult",
    "dirichlet_partition",
    "history_table",
    "iid_partition",
    "load_dataset",
    "plot",
    "run_simulation",
]
