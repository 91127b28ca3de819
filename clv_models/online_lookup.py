"""A prepared online-feature lookup for the CLV endpoint: the same values as Feast's
``FeatureStore.get_online_features(...).to_dict()``, for a fraction of its per-call cost.

Feast's ``get_online_features`` resolves the feature references against the registry,
converts the entity rows to protobuf, builds a protobuf response and converts it back on every
call: for one customer of ``clv_v2`` on SQLite, 0.75 ms per read against 0.33 ms here
(median, back-to-back reads in one process, 2 busy cores). :class:`OnlineLookup` resolves
the feature views once, at start-up, then per call asks the online store itself (the
provider's ``online_read``, the public interface every Feast online store implements, SQLite
and Redis alike) for the rows of each view and converts the values with Feast's own
``feast_value_type_to_python_type``, with the feature's declared type, as ``to_dict`` does.

Semantics are Feast's: one value per requested id and feature, in order; ``None`` for a
feature the store holds no value for, and for every feature of a view that has no row for the
id; no TTL filter (Feast's online reads do not apply one either). Rows written by a push
(``clv push-event``) are read like materialized ones, so they are visible to the next call.
``tests/test_serving.py`` checks the lookup against ``get_online_features`` value for value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feast import FeatureStore


class OnlineLookup:
    """The online values of fixed feature references, read straight from the online store.

    Parameters
    ----------
    store
        The Feast feature store (its registry must hold every referenced view).
    refs
        ``"view:feature"`` references, e.g. a feature service's plus a few extra ones.
    entity_key
        The join key of the views' single entity (``customer_id``).
    """

    def __init__(self, store: FeatureStore, refs: Sequence[str], entity_key: str) -> None:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from feast.type_map import feast_value_type_to_python_type

        self._store = store
        self._provider = store.provider
        self._entity_key = entity_key
        self._entity_key_proto, self._value_proto = EntityKey, Value
        self._to_python = feast_value_type_to_python_type
        by_view: dict[str, list[str]] = {}
        for ref in refs:
            view, name = ref.split(":", 1)
            by_view.setdefault(view, [])
            if name not in by_view[view]:
                by_view[view].append(name)
        self.views = []  # (feature view, [(feature, value type)])
        for view, names in by_view.items():
            fv = store.get_feature_view(view)
            types = {f.name: f.dtype.to_value_type() for f in fv.features}
            unknown = [n for n in names if n not in types]
            if unknown:
                raise KeyError(f"feature view {view} has no features {unknown}")
            self.views.append((fv, [(n, types[n]) for n in names]))
        self.names = [n for _, fields in self.views for n, _ in fields]

    def read(self, ids: Sequence[str]) -> tuple[dict[str, list[Any]],
                                                dict[str, list[dt.datetime | None]]]:
        """The values of ``ids`` (distinct) by feature, and each view's row timestamp per id.

        Returns
        -------
        values
            ``{entity_key: ids, feature: [value per id]}``: Python values as Feast's
            ``to_dict`` gives them (``None`` where missing, lists for array features).
        stamps
            ``{view: [event timestamp (UTC) per id, None where the view has no row]}``.
        """
        keys = [self._entity_key_proto(join_keys=[self._entity_key],
                                       entity_values=[self._value_proto(string_val=c)])
                for c in ids]
        values: dict[str, list[Any]] = {self._entity_key: list(ids)}
        stamps: dict[str, list[dt.datetime | None]] = {}
        to_python = self._to_python
        config = self._store.config
        for fv, fields in self.views:
            # A new list each call: Feast's Redis store appends its timestamp field to it.
            rows = self._provider.online_read(config=config, table=fv, entity_keys=keys,
                                              requested_features=[n for n, _ in fields])
            for name, vtype in fields:
                values[name] = [None if data is None or name not in data
                                else to_python(data[name], vtype) for _, data in rows]
            # Redis answers a missing row with the epoch as its timestamp: no row.
            stamps[fv.name] = [ts if data is not None and ts is not None and ts.timestamp()
                               else None for ts, data in rows]
        return values, stamps
