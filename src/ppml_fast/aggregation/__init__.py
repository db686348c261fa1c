"""Federated aggregation and secure aggregation.

Aggregators (vectorised over clients; ``updates`` takes the forms below):

- :func:`fedavg` -- the mean weighted by sample counts; :class:`StreamingFedAvg` adds one
  client at a time in O(D) memory;
- :func:`encrypted_fedavg` -- FedAvg on CKKS-encrypted updates (:mod:`ppml_fast.ckks`);
- :func:`fedprox_gradient` -- FedProx's client proximal term (its server side is FedAvg);
- :func:`dp_fedavg` -- DP-FedAvg (McMahan et al. 2018): server-side clipping of client
  updates (fixed or adaptive), central Gaussian noise, and the accountant's event;
- :func:`coordinate_median`, :func:`trimmed_mean` -- coordinate-wise robust statistics;
- :func:`krum`, :func:`multi_krum` -- Blanchard et al. (2017), distances from one Gram
  matrix.

Secure aggregation (SecAgg, Bonawitz et al. 2017; SecAgg+, Bell et al. 2020):

- :func:`secure_aggregate` -- one round over ``(n_clients, D)`` updates with dropouts;
  :class:`SecAggClient` / :class:`SecAggServer` expose the protocol's rounds;
- :func:`quantize` / :func:`dequantize` -- the fixed-point ring encoding;
- :func:`expand_masks` -- the AES-128-CTR mask kernel; :func:`secagg_graph` -- the
  SecAgg+ neighbour graph.

See :mod:`.fedavg` (FedAvg, FedProx, DP-FedAvg), :mod:`.robust` (median, trimmed mean,
Krum) and :mod:`.secure` for the details, maths and security notes of each part.

Inputs
------
``updates`` (``UpdatesLike``) is one of

- an array of shape ``(n, ...)``: row ``i`` is client ``i``'s update; the result has
  shape ``updates.shape[1:]``;
- a list (or tuple) of ``n`` arrays of one shape: client ``i``'s update; the result has
  that shape;
- a list of ``n`` lists of per-layer arrays (parameter lists, as a model's
  ``parameters()`` gives them), every client with the same layer shapes; the result is a
  list of per-layer arrays. Distances and norms are taken over all layers together.

A list or tuple is always a list of clients, and a client given as a list is always a
list of layers (pass ``np.asarray(nested_list)`` for a matrix). float32 and float64 are
supported, one dtype for every client and layer; results have that dtype. Torch CPU
tensors and anything else ``np.asarray`` can view are read without a copy; an (n, D)
matrix whose rows are each contiguous is the fastest input (lists are stacked into one
where an aggregator needs all clients at once). :func:`secure_aggregate` takes the
stricter ``(n, D)`` form (an array of any real dtype, or a list of 1-D arrays), since it
quantises every update to one vector of ring elements.
"""

from __future__ import annotations

from .encrypted import encrypted_fedavg
from .fedavg import (
    DPFedAvgResult,
    StreamingFedAvg,
    dp_fedavg,
    fedavg,
    fedprox_gradient,
)
from .robust import (
    KrumResult,
    coordinate_median,
    krum,
    multi_krum,
    trimmed_mean,
)
from .secure import (
    SecAggClient,
    SecAggError,
    SecAggResult,
    SecAggServer,
    dequantize,
    expand_masks,
    quantize,
    secagg_graph,
    secure_aggregate,
)

__all__ = [
    "DPFedAvgResult",
    "KrumResult",
    "SecAggClient",
    "SecAggError",
    "SecAggResult",
    "SecAggServer",
    "StreamingFedAvg",
    "coordinate_median",
    "dequantize",
    "dp_fedavg",
    "encrypted_fedavg",
    "expand_masks",
    "fedavg",
    "fedprox_gradient",
    "krum",
    "multi_krum",
    "quantize",
    "secagg_graph",
    "secure_aggregate",
    "trimmed_mean",
]
