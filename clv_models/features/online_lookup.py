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

On SQLite (the embedded store) it goes one step further: Feast's SQLite store keeps one row per
(customer, feature) in one table per view and reads each view with its own query, turning every
row's timestamp into a datetime; the lookup reads all views in one ``UNION ALL`` query on a
read-only connection of its own and converts only the requested values (one customer: 0.43 ->
0.18 ms; 100 customers of ``clv_v2``: 50 -> 23 ms, back to back on 2 busy cores). It relies on
Feast's table layout (``<project>_<view>`` tables of ``entity_key``, ``feature_name``,
``value`` as a serialized ``Value``, ``event_ts`` in epoch seconds), which the tests check
against ``get_online_features``. Other stores go through ``online_read``.

Semantics are Feast's: one value per requested id and feature, in order; ``None`` for a
feature the store holds no value for, and for every feature of a view that has no row for the
id; no TTL filter (Feast's online reads do not apply one either). Rows written by a push
(``clv push-event``) are read like materialized ones, so they are visible to the next call.
``tests/test_serving.py`` checks the lookup against ``get_online_features`` value for value.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feast import FeatureStore

#: Ids per SQLite query (each appears once per view among the query's parameters).
SQLITE_CHUNK = 1000


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
        self._sqlite = self._sqlite_reader() if store.config.online_store.type == "sqlite" \
            else None

    def _sqlite_reader(self) -> tuple[sqlite3.Connection, str]:
        """A read-only connection to Feast's SQLite file and the query of every view (``{qs}``:
        the placeholders of one view's entity keys)."""
        from feast.infra.online_stores.helpers import compute_table_id

        config = self._store.config
        path = Path(config.online_store.path)
        if not path.is_absolute() and config.repo_path:  # as Feast resolves it
            path = Path(config.repo_path) / path
        versioned = config.registry.enable_online_feature_view_versioning
        selects = []
        for i, (fv, _) in enumerate(self.views):
            table = compute_table_id(config.project, fv, versioned).replace('"', '""')
            selects.append(f'SELECT {i}, entity_key, feature_name, value, event_ts '  # noqa: S608
                           f'FROM "{table}" WHERE entity_key IN ({{qs}})')
        # check_same_thread=False: the endpoint's requests come from the event loop or a
        # worker thread, one at a time (the service's lock), as with Feast's own connection.
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                              check_same_thread=False)
        return con, " UNION ALL ".join(selects)

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
        if self._sqlite is not None:
            return self._read_sqlite(ids, keys)
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

    def _read_sqlite(self, ids: Sequence[str], keys: list) -> tuple[
            dict[str, list[Any]], dict[str, list[dt.datetime | None]]]:
        """:meth:`read` in one query per :data:`SQLITE_CHUNK` ids, straight from Feast's
        SQLite tables."""
        from feast.infra.key_encoding_utils import serialize_entity_key

        con, query = self._sqlite
        version = self._store.config.entity_key_serialization_version
        blobs = [serialize_entity_key(k, entity_key_serialization_version=version)
                 for k in keys]
        position = {b: i for i, b in enumerate(blobs)}
        values: dict[str, list[Any]] = {self._entity_key: list(ids)}
        for _, fields in self.views:
            for name, _ in fields:
                values[name] = [None] * len(ids)
        fields_by_view = [dict(fields) for _, fields in self.views]
        epochs: list[list[int | None]] = [[None] * len(ids) for _ in self.views]
        value_proto, to_python = self._value_proto, self._to_python
        for lo in range(0, len(blobs), SQLITE_CHUNK):
            chunk = blobs[lo: lo + SQLITE_CHUNK]
            sql = query.format(qs=",".join("?" * len(chunk)))
            for view, key, name, blob, ts in con.execute(sql, chunk * len(self.views)):
                i = position[key]
                epochs[view][i] = ts
                vtype = fields_by_view[view].get(name)
                if vtype is not None:
                    value = value_proto()
                    value.ParseFromString(blob)
                    values[name][i] = to_python(value, vtype)
        utc = dt.timezone.utc
        stamps = {fv.name: [None if e is None else dt.datetime.fromtimestamp(int(e), tz=utc)
                            for e in column]
                  for (fv, _), column in zip(self.views, epochs, strict=True)}
        return values, stamps
