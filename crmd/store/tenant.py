"""Tenancy in one place: every read and write of tenant data goes through a
TenantStore made for the signed-in user, which adds ``userId`` to every filter and every
document. A handler cannot forget it, and cannot ask for another user's data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import UpdateOne, WriteConcern
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.command_cursor import AsyncCommandCursor
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from crmd.errors import NotFound
from crmd.store import numbering
from crmd.store.documents import Doc
from crmd.store.reads import in_batches

TENANT_KEY = "userId"
"""Holds the workspace's id. The name is from before workspaces: keeping it let the
upgrade leave every document as it was (``crmd.workspaces.migrate``)."""

TENANT_COLLECTIONS = frozenset(
    {
        "customers",
        "orders",
        "uploads",
        "segments",
        "campaigns",
        "communication_log",
        "send_chunks",
        "receipt_events",
        "upload_errors",
        "upload_chunks",
        "suppressions",
        "soft_bounces",
        "attributions",
        "flows",
        "flow_versions",
        "flow_states",
        "flow_steps",
        "events",
        "idempotency_keys",
        "webhooks",
        "webhook_deliveries",
        "api_keys",
        "audit",
    }
)
# Stages that read or write outside the scoped collection: not allowed anywhere in a
# pipeline, nested ones ($facet) included.
_UNSCOPED_STAGES = frozenset({"$lookup", "$unionWith", "$graphLookup", "$out", "$merge"})
# The update operators crmd uses. Pipeline updates, $rename and anything else that
# could rewrite or drop userId are refused.
_UPDATE_OPERATORS = frozenset(
    {
        "$set",
        "$setOnInsert",
        "$inc",
        "$push",
        "$addToSet",
        "$pull",
        "$unset",
        "$min",
        "$max",
        "$currentDate",
        "$mul",
    }
)


class TenancyError(Exception):
    """A query tried to step outside its tenant. A bug in crmd, never a user error."""


def object_id(text: str, what: str = "resource") -> ObjectId:
    """A path id as an ObjectId; a malformed one is simply not found (404)."""
    try:
        return ObjectId(text)
    except (InvalidId, TypeError):
        raise NotFound(f"{what} {text!r} not found") from None


class TenantStore:
    def __init__(self, db: AsyncDatabase[Doc], user_id: str, *, majority: bool = False) -> None:
        """``majority``: writes wait for a majority of the replica set (imports use it)."""
        if not user_id:
            raise TenancyError("a tenant store needs a user id")
        self.db = db
        self.user_id = user_id
        self.write_concern = WriteConcern("majority") if majority else None

    def __getitem__(self, name: str) -> ScopedCollection:
        if name not in TENANT_COLLECTIONS:
            raise TenancyError(f"{name!r} is not a tenant collection")
        return ScopedCollection(
            self.db.get_collection(name, write_concern=self.write_concern), self.user_id
        )

    # The user's record numbers and tallies (``crmd.store.numbering``), so that no
    # handler needs the database itself.

    async def reserve(self, kind: str, count: int) -> int:
        """The first of ``count`` new numbers for this user's ``kind``."""
        return await numbering.reserve(self.db, self.user_id, kind, count)

    async def highest(self, kind: str) -> int:
        """The last number given out for this user's ``kind`` (0: none yet)."""
        return await numbering.highest(self.db, self.user_id, kind)

    async def add_to_tally(
        self, kind: str, count: int, session: AsyncClientSession | None = None, stored: int = 0
    ) -> None:
        """Add ``count`` records to this user's ``kind`` tally."""
        await numbering.add_to_tally(self.db, self.user_id, kind, count, session, stored)

    async def add_to_statuses(self, change: dict[str, int]) -> None:
        """Move this user's messages-by-status tally by ``change``."""
        await numbering.add_to_statuses(self.db, self.user_id, change)

    async def highest_and_tally(self, kind: str) -> tuple[int, Doc]:
        """The highest stored number of ``kind`` and the tallies, in one read."""
        return await numbering.highest_and_tally(self.db, self.user_id, kind)

    async def tally(self) -> Doc:
        """This user's tallies (and ``byStatus``)."""
        return await numbering.tally(self.db, self.user_id)


class ScopedCollection:
    """The subset of a collection's API crmd uses, each call scoped to one user."""

    def __init__(self, collection: AsyncCollection[Doc], user_id: str) -> None:
        self.collection = collection
        self.user_id = user_id

    def scope(self, filter: Mapping[str, Any] | None = None) -> Doc:
        scoped = dict(filter or {})
        if scoped.get(TENANT_KEY, self.user_id) != self.user_id:
            raise TenancyError("filter names another tenant")
        scoped[TENANT_KEY] = self.user_id
        return scoped

    def _owned(self, doc: Mapping[str, Any]) -> Doc:
        if doc.get(TENANT_KEY, self.user_id) != self.user_id:
            raise TenancyError("document names another tenant")
        return {**doc, TENANT_KEY: self.user_id}

    def _update(self, update: Mapping[str, Any]) -> Mapping[str, Any]:
        if not isinstance(update, Mapping):
            raise TenancyError("pipeline updates are not allowed on tenant data")
        for operator, fields in update.items():
            if operator not in _UPDATE_OPERATORS:
                raise TenancyError(f"update operator {operator} is not allowed on tenant data")
            if not isinstance(fields, Mapping) or any(
                key == TENANT_KEY or key.startswith(TENANT_KEY + ".") for key in fields
            ):
                raise TenancyError(f"an update may not touch {TENANT_KEY} ({operator})")
        return update

    async def get(self, id_text: str, what: str, **kwargs: Any) -> Doc:
        """The document whose ObjectId is ``id_text`` (from a path): 404 when it is
        malformed, absent, or another user's, which all look the same from outside."""
        doc = await self.find_one({"_id": object_id(id_text, what)}, **kwargs)
        if doc is None:
            raise NotFound(f"{what} {id_text!r} not found")
        return doc

    async def by_ids(
        self,
        ids: Iterable[Any],
        where: Mapping[str, Any] | None = None,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Doc]:
        """The user's documents among ``ids`` (that match the equalities in ``where``).

        Asked by ``_id`` alone, and each answer then checked to be this user's: given
        ``{userId, _id: {$in}}`` SecantusDB walks a userId-led index and tests every
        document the user has against the list (500 ids among 100,000 customers took
        86 s; by ``_id`` alone, 13 ms)."""
        if projection and any(not v for v in projection.values()):
            raise TenancyError("by_ids takes an inclusive projection")
        wanted = (
            {**projection, TENANT_KEY: 1, **dict.fromkeys(where or {}, 1)} if projection else None
        )
        found = []
        for keys in in_batches(ids):
            async for doc in self.collection.find({"_id": {"$in": keys}}, projection=wanted):
                if doc.get(TENANT_KEY) != self.user_id:
                    continue
                if all(doc.get(k) == v for k, v in (where or {}).items()):
                    found.append(doc)
        return found

    async def find_one(self, filter: Mapping[str, Any] | None = None, **kwargs: Any) -> Doc | None:
        return await self.collection.find_one(self.scope(filter), **kwargs)

    def find(self, filter: Mapping[str, Any] | None = None, **kwargs: Any) -> AsyncCursor[Doc]:
        return self.collection.find(self.scope(filter), **kwargs)

    async def count_documents(self, filter: Mapping[str, Any] | None = None, **kwargs: Any) -> int:
        return await self.collection.count_documents(self.scope(filter), **kwargs)

    async def insert_one(self, doc: Mapping[str, Any]) -> InsertOneResult:
        return await self.collection.insert_one(self._owned(doc))

    async def insert_many(
        self,
        docs: Iterable[Mapping[str, Any]],
        ordered: bool = False,
        session: AsyncClientSession | None = None,
    ) -> InsertManyResult:
        return await self.collection.insert_many(
            [self._owned(d) for d in docs], ordered=ordered, session=session
        )

    async def update_one(
        self, filter: Mapping[str, Any], update: Mapping[str, Any], upsert: bool = False
    ) -> UpdateResult:
        return await self.collection.update_one(
            self.scope(filter), self._update(update), upsert=upsert
        )

    async def update_many(
        self, filter: Mapping[str, Any], update: Mapping[str, Any]
    ) -> UpdateResult:
        return await self.collection.update_many(self.scope(filter), self._update(update))

    async def find_one_and_update(
        self, filter: Mapping[str, Any], update: Mapping[str, Any], **kwargs: Any
    ) -> Doc | None:
        return await self.collection.find_one_and_update(
            self.scope(filter), self._update(update), **kwargs
        )

    async def bulk_update(
        self, updates: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]], upsert: bool = False
    ) -> BulkWriteResult:
        """One unordered bulk write of (filter, update) pairs, each filter scoped."""
        operations = [UpdateOne(self.scope(f), self._update(u), upsert=upsert) for f, u in updates]
        return await self.collection.bulk_write(operations, ordered=False)

    async def delete_one(self, filter: Mapping[str, Any]) -> DeleteResult:
        return await self.collection.delete_one(self.scope(filter))

    async def delete_many(self, filter: Mapping[str, Any] | None = None) -> DeleteResult:
        return await self.collection.delete_many(self.scope(filter))

    async def aggregate(
        self, pipeline: Sequence[Mapping[str, Any]], **kwargs: Any
    ) -> AsyncCommandCursor[Doc]:
        """The pipeline on the user's documents only. A leading ``$match`` takes the
        scope into itself, so the database can choose an index for the whole filter.
        ``kwargs`` go to the driver (``maxTimeMS``)."""
        _refuse_unscoped(pipeline)
        stages = list(pipeline)
        if stages and set(stages[0]) == {"$match"}:
            return await self.collection.aggregate(
                [{"$match": self.scope(stages[0]["$match"])}, *stages[1:]], **kwargs
            )
        return await self.collection.aggregate([{"$match": self.scope()}, *stages], **kwargs)


def _refuse_unscoped(node: Any) -> None:
    """Walk a pipeline, nested ones included, for stages that leave the collection."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in _UNSCOPED_STAGES:
                raise TenancyError(f"{key} is not allowed on tenant data")
            _refuse_unscoped(value)
    elif isinstance(node, list | tuple):
        for item in node:
            _refuse_unscoped(item)
