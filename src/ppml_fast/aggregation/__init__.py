"""Federated aggregation and secure aggregation.

Aggregators (vectorised over clients; ``updates`` is a ``(n_clients, D)`` array, a list
of per-client arrays, or a list of per-client lists of per-layer arrays):

- :func:`fedavg` -- the mean weighted by sample counts; :class:`StreamingFedAvg` adds one
  client at a time in O(D) memory;
- :func:`coordinate_median`, :func:`trimmed_mean` -- coordinate-wise robust statistics;
- :func:`krum`, :func:`multi_krum` -- Blanchard et al. (2017), distances from one Gram
  matrix;
- :func:`fedprox_gradient` -- FedProx's client proximal term (its server side is FedAvg);
- :func:`dp_fedavg` -- DP-FedAvg (McMahan et al. 2018): server-side clipping of client
  updates (fixed or adaptive), central Gaussian noise, and the accountant's event.

Secure aggregation (SecAgg, Bonawitz et al. 2017; SecAgg+, Bell et al. 2020):

- :func:`secure_aggregate` -- one round over ``(n_clients, D)`` updates with dropouts;
  :class:`SecAggClient` / :class:`SecAggServer` expose the protocol's rounds;
- :func:`quantize` / :func:`dequantize` -- the fixed-point ring encoding;
- :func:`expand_masks` -- the AES-128-CTR mask kernel; :func:`secagg_graph` -- the
  SecAgg+ neighbour graph.

See :mod:`.robust` and :mod:`.secure` for the details, maths and
security notes of each part.
"""

from __future__ import annotations

from .robust import (
    DPFedAvgResult,
    KrumResult,
    StreamingFedAvg,
    coordinate_median,
    dp_fedavg,
    fedavg,
    fedprox_gradient,
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
