"""Federated-learning simulation: many clients, one server, private or secure aggregation.

:func:`run_simulation` trains a numpy model (:class:`LogisticRegression`, :class:`MLP`) by
federated averaging (McMahan et al. 2017) over simulated clients, each holding a part of a
data set (:func:`iid_partition`, :func:`dirichlet_partition`). Every round the server
samples clients, each sampled client runs local SGD on its own data -- optionally DP-SGD
(Abadi et al. 2016) through :func:`ppml_fast.clipping.dp_aggregate` -- and returns its
model update, and the server combines the updates with one of

- :class:`FedAvg`: the (sample-count weighted) mean of the updates;
- :class:`DPFedAvg`: client-level DP (McMahan et al. 2018): clip each update, add
  Gaussian noise to the sum, divide by the expected number of clients;
- :class:`SecureAggregation`: SecAgg (Bonawitz et al. 2017) or, with ``neighbors``,
  SecAgg+ (Bell et al. 2020), with simulated client dropouts: the server learns only the
  fixed-point sum of the surviving clients' updates and divides it by their number;
- :class:`PaillierAggregation`: clients encrypt their updates under the public key of a
  simulated decryptor, the server adds ciphertexts and the decryptor decrypts the sum.
  By default each client clips its update to ``[-clip, clip]``, quantises it and packs
  many values into each ciphertext (:func:`ppml_fast.paillier.encrypt_packed`, with
  headroom for the clients of one round), so it sends, and the server adds and
  decrypts, about ``packing_factor`` times fewer ciphertexts; ``packing=False``
  encrypts every value on its own;
- :class:`CKKSAggregation`: clients clip their updates, weight them by their example
  counts and encrypt them under CKKS (:mod:`ppml_fast.ckks`, on TenSEAL), packed N/2
  values per ciphertext; the server, holding only the public context, averages the
  ciphertexts (:func:`ppml_fast.aggregation.encrypted_fedavg`) and a simulated key
  holder decrypts the average, equal to FedAvg's within the stated ``precision``.

DP-SGD clients combine with any of these except :class:`DPFedAvg` (one DP level per run).
Each round is recorded (:class:`RoundRecord`): loss, test accuracy, ε spent, bytes a
client sends (and, under Paillier and CKKS, the values per ciphertext, the encryption and
decryption times and, under CKKS, the values clipped), and the time of the client
and aggregation phases; :func:`history_table`
prints the records and :func:`plot` draws them.

The split-learning family, :func:`run_split_simulation`, trains a layered numpy model cut
at a chosen layer (:mod:`ppml_fast.split`) with horizontal SplitNN (label sharing or
U-shaped), SplitFed (clients in parallel on the executor, bottoms and server-side tops
federated-averaged) or vertical split learning (feature blocks held by parties), with
DP on the cut layer, NoPeek and label protection as asked. Each round
(:class:`SplitRoundRecord`) records the loss, the test accuracy, the bytes that crossed
the cut each way and the model bytes exchanged, the time of the client, server and
averaging phases, the ε spent (cut layer and labels) and, with ``leakage=True``, the
norm attack's AUC on the returned gradients and the distance correlation of test rows
with their activations; :func:`split_history_table` prints them and :func:`plot_split`
draws accuracy, ε and leakage per round.

Parts
-----
- :mod:`.models` -- the numpy models (parameters, forward pass, gradients);
- :mod:`.data` -- the bundled data sets and the IID / Dirichlet partitions;
- :mod:`.client` -- a client's round: local training, DP-SGD, what it sends;
- :mod:`.server` -- the aggregators and the server's side of a round;
- :mod:`.run` -- :func:`run_simulation`: argument checks, the round loop, the accounting;
- :mod:`.records` -- the per-round records and their table; :mod:`.plots` -- the figure;
- :mod:`.split` -- :func:`run_split_simulation`, its records, table and figure.

Scale-out
---------
Client work runs through a :class:`concurrent.futures.Executor`: by default a local
thread pool (the kernels release the GIL); ``executor=dask_client.get_executor()`` runs
the same tasks on a Dask cluster. A client task is a pure function of its inputs and of
its own seed, derived from the run's one master seed by :class:`numpy.random.SeedSequence`
spawn keys ``(stream, round, client)``; the server reads results in client order. A
seeded run therefore gives the same model, bit for bit, on any executor -- except under
CKKS, whose encryption randomness comes from TenSEAL's own CSPRNG: there runs agree
within the aggregator's ``precision``. CKKS clients encrypt in their task's own process
(TenSEAL holds the GIL, so on the default thread pool their encryptions take turns; a
Dask cluster of processes runs them in parallel).

Security
--------
This is a simulation: every party runs in one process or cluster, and the server's
evaluation reads all training data. With ``seed=None`` every random draw (client and
batch sampling, DP noise) comes from the secure stream of :mod:`ppml_fast.rng`; with a
seed the DP noise is reproducible by anyone who knows the seed (tests and experiments
only; ppml_fast warns once per process). Secure-aggregation masks and Paillier
randomness, and CKKS keys and encryption randomness, are always secure. The ε reported
for DP-SGD is example-level DP for every client's data (the worst client's ε, ignoring
the amplification from client sampling); for DP-FedAvg it is client-level DP.
"""

from __future__ import annotations

from .client import DPSGD
from .data import Dataset, dirichlet_partition, iid_partition, load_dataset
from .models import MLP, LogisticRegression, Model
from .plots import plot
from .records import RoundRecord, SimulationResult, history_table
from .run import run_simulation
from .server import (
    Aggregator,
    CKKSAggregation,
    DPFedAvg,
    FedAvg,
    PaillierAggregation,
    SecureAggregation,
)
from .split import (
    SPLITS,
    SplitRoundRecord,
    SplitSimulationResult,
    plot_split,
    run_split_simulation,
    split_history_table,
)

__all__ = [
    "DPSGD",
    "MLP",
    "SPLITS",
    "Aggregator",
    "CKKSAggregation",
    "DPFedAvg",
    "Dataset",
    "FedAvg",
    "LogisticRegression",
    "Model",
    "PaillierAggregation",
    "RoundRecord",
    "SecureAggregation",
    "SimulationResult",
    "SplitRoundRecord",
    "SplitSimulationResult",
    "dirichlet_partition",
    "history_table",
    "iid_partition",
    "load_dataset",
    "plot",
    "plot_split",
    "run_simulation",
    "run_split_simulation",
    "split_history_table",
]
