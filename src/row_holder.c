/*-------------------------------------------------------------------------
 *
 * row_holder.c
 *		Whether the current transaction has changed or locked a row:
 *		ray._row_held_here(regclass, tid).
 *
 * ray.wait_job inside a transaction would wait in vain when the background
 * worker cannot act before that transaction ends: a job it queued is
 * invisible to the worker, and a job or resource group row it changed or
 * locked, in any mode but FOR KEY SHARE, blocks the worker's update.  Row locks are not in pg_locks, so the row's header says: its
 * xmin, or its xmax (a plain xid or a multixact's members), is one of this
 * transaction's xids.
 *
 * Copyright (c) 2026, pg_ray developers
 *
 * IDENTIFICATION
 *	  src/row_holder.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/table.h"
#include "access/xact.h"
#include "fmgr.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(pg_ray_row_held_here);

/*
 * row_holder_blocks_update
 *		Whether a tuple's xmax says this transaction updated, deleted or
 *		locked it in a mode that a plain UPDATE (FOR NO KEY UPDATE) waits
 *		for: any lock but FOR KEY SHARE, which only foreign keys and
 *		pg_ray's lookups for jobs take, and which the worker's updates pass.
 */
static bool
row_holder_blocks_update(HeapTupleHeader header)
{
	uint16		infomask = header->t_infomask;
	TransactionId xmax = HeapTupleHeaderGetRawXmax(header);

	if (infomask & HEAP_XMAX_INVALID)
		return false;
	if (infomask & HEAP_XMAX_IS_MULTI)
	{
		MultiXactMember *members;
		int			count;
		bool		blocks = false;

		count = GetMultiXactIdMembers(xmax, &members, false,
									  HEAP_XMAX_IS_LOCKED_ONLY(infomask));
		for (int i = 0; i < count; i++)
			blocks = blocks || (members[i].status != MultiXactStatusForKeyShare &&
								TransactionIdIsCurrentTransactionId(members[i].xid));
		if (count > 0)
			pfree(members);
		return blocks;
	}
	if (HEAP_XMAX_IS_LOCKED_ONLY(infomask) && HEAP_XMAX_IS_KEYSHR_LOCKED(infomask))
		return false;
	return TransactionIdIsCurrentTransactionId(xmax);
}

/*
 * pg_ray_row_held_here
 *		'changed' when this transaction made the row version at tid (an
 *		insert or an update), 'locked' when it has deleted it or holds a
 *		lock on it that a plain UPDATE would wait for (not FOR KEY SHARE),
 *		NULL otherwise or when there is no tuple there.  Only
 *		the extension's own functions call it (EXECUTE is granted to no
 *		role): it reads tuple headers without permission checks.
 */
Datum
pg_ray_row_held_here(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ItemPointer tid = (ItemPointer) PG_GETARG_POINTER(1);
	Relation	relation;
	HeapTupleData tuple;
	Buffer		buffer;
	const char *held = NULL;

	relation = table_open(relid, AccessShareLock);
	if (relation->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(relation))));
	tuple.t_self = *tid;
	if (ItemPointerIsValid(tid) &&
		ItemPointerGetBlockNumber(tid) < RelationGetNumberOfBlocks(relation) &&
		heap_fetch(relation, SnapshotAny, &tuple, &buffer, false))
	{
		LockBuffer(buffer, BUFFER_LOCK_SHARE);
		if (!HeapTupleHeaderXminFrozen(tuple.t_data) &&
			TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(tuple.t_data)))
			held = "changed";
		else if (row_holder_blocks_update(tuple.t_data))
			held = "locked";
		LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
		ReleaseBuffer(buffer);
	}
	table_close(relation, AccessShareLock);

	if (held == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(held));
}
