//! The database: migrations, writing a block (one transaction), rewinding, and the explorer's
//! queries. Amounts cross the wire as text (`$n::text::numeric`, `col::text`): u128 does not fit
//! any PostgreSQL integer type.

use tokio_postgres::{Client, NoTls, Row};
use zkl_rpc_api::explorer::{
    BlockSummary, Candle, CandleQuery, ChainCounters, HistoryQuery, OpEntry, Page, TradeEntry, TradeQuery, pos,
};
use zkl_rpc_api::{BlockRecord, L1Counters};
use zkl_types::Op;

use crate::IndexerError;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Connects to `url` (the connection runs on its own task until the client is dropped) and
/// applies the pending migrations.
pub async fn connect(url: &str) -> Result<Client, IndexerError> {
    let (mut client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(IndexerError::db)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("database connection closed: {e}");
        }
    });
    embedded::migrations::runner()
        .run_async(&mut client)
        .await
        .map_err(|e| IndexerError::Database(format!("migrations: {e}")))?;
    Ok(client)
}

/// The last indexed block and its root, if any.
pub async fn last_block(db: &Client) -> Result<Option<(u32, String)>, IndexerError> {
    let row = db
        .query_opt("SELECT number, new_root FROM blocks ORDER BY number DESC LIMIT 1", &[])
        .await
        .map_err(IndexerError::db)?;
    Ok(row.map(|r| (r.get::<_, i32>(0) as u32, r.get(1))))
}

/// The root of indexed block `number`.
pub async fn root_of(db: &Client, number: u32) -> Result<Option<String>, IndexerError> {
    let row = db
        .query_opt("SELECT new_root FROM blocks WHERE number = $1", &[&(number as i32)])
        .await
        .map_err(IndexerError::db)?;
    Ok(row.map(|r| r.get(0)))
}

/// Forgets every block numbered above `keep` (their ops, trades and accounts go with them).
pub async fn rewind(db: &Client, keep: u32) -> Result<u64, IndexerError> {
    db.execute("DELETE FROM blocks WHERE number > $1", &[&(keep as i32)]).await.map_err(IndexerError::db)
}

/// Writes one block and everything derived from it in one transaction: after a crash it is
/// either all there or not at all.
pub async fn insert_block(db: &mut Client, b: &BlockRecord) -> Result<(), IndexerError> {
    let tx = db.transaction().await.map_err(IndexerError::db)?;
    tx.execute(
        "INSERT INTO blocks (number, timestamp, capacity, old_root, new_root, commitment, op_count, tx_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &(b.number as i32),
            &(b.timestamp as i64),
            &(b.capacity as i32),
            &b.old_root,
            &b.new_root,
            &b.commitment,
            &(b.ops.len() as i32),
            &(b.tx_hashes.len() as i32),
        ],
    )
    .await
    .map_err(IndexerError::db)?;
    let insert_op = tx
        .prepare("INSERT INTO ops (pos, block, idx, hash, kind, op) VALUES ($1, $2, $3, $4, $5, $6)")
        .await
        .map_err(IndexerError::db)?;
    let insert_account = tx
        .prepare("INSERT INTO op_accounts (account, pos, kind) VALUES ($1, $2, $3)")
        .await
        .map_err(IndexerError::db)?;
    let insert_trade = tx
        .prepare(
            "INSERT INTO trades (pos, time, base, quote, price, base_amount, quote_amount, maker, maker_sub, \
             taker, taker_sub, maker_is_sell) VALUES ($1, $2, $3, $4, div($6::text::numeric * 1e18, $5::text::numeric), \
             $5::text::numeric, $6::text::numeric, $7, $8, $9, $10, $11)",
        )
        .await
        .map_err(IndexerError::db)?;
    for (index, op) in b.ops.iter().enumerate() {
        if matches!(op, Op::Noop) {
            continue;
        }
        let p = pos(b.number, index as u32) as i64;
        let hash = b.op_hashes.get(index).cloned().unwrap_or_default();
        let json = serde_json::to_value(op).map_err(|e| IndexerError::Database(e.to_string()))?;
        tx.execute(&insert_op, &[&p, &(b.number as i32), &(index as i32), &hash, &op.name(), &json])
            .await
            .map_err(IndexerError::db)?;
        for account in op.accounts() {
            tx.execute(&insert_account, &[&i64::from(account), &p, &op.name()]).await.map_err(IndexerError::db)?;
        }
        if let Op::OrderMatching(m) = op {
            // The price is `quote · 10^18 / base`, exact (the node accepts a fill only if
            // `quote · 10^18 = base · price`); computed in NUMERIC, as `quote · 10^18` may not
            // fit 128 bits.
            tx.execute(
                &insert_trade,
                &[
                    &p,
                    &(b.timestamp as i64),
                    &i32::from(m.base),
                    &i32::from(m.quote),
                    &m.base_fill.to_string(),
                    &m.quote_fill.to_string(),
                    &i64::from(m.maker),
                    &i16::from(m.maker_sub),
                    &i64::from(m.taker),
                    &i16::from(m.taker_sub),
                    &m.maker_is_sell,
                ],
            )
            .await
            .map_err(IndexerError::db)?;
        }
    }
    tx.commit().await.map_err(IndexerError::db)
}

/// Records the node's tip and each chain's counters.
pub async fn set_status(db: &Client, node_block: u32, chains: &[ChainCounters]) -> Result<(), IndexerError> {
    db.execute(
        "INSERT INTO node_tip (id, block) VALUES (TRUE, $1) ON CONFLICT (id) DO UPDATE SET block = $1",
        &[&(node_block as i32)],
    )
    .await
    .map_err(IndexerError::db)?;
    for c in chains {
        db.execute(
            "INSERT INTO l1_chains (chain, committed, proven, executed) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (chain) DO UPDATE SET committed = $2, proven = $3, executed = $4",
            &[
                &i32::from(c.chain),
                &(c.counters.committed as i32),
                &(c.counters.proven as i32),
                &(c.counters.executed as i32),
            ],
        )
        .await
        .map_err(IndexerError::db)?;
    }
    Ok(())
}

// ---- reads -------------------------------------------------------------------------------------

/// The node's tip as last recorded (0 before the first).
pub async fn node_tip(db: &Client) -> Result<u32, IndexerError> {
    let row = db.query_opt("SELECT block FROM node_tip", &[]).await.map_err(IndexerError::db)?;
    Ok(row.map_or(0, |r| r.get::<_, i32>(0) as u32))
}

/// Each chain's counters.
pub async fn chains(db: &Client) -> Result<Vec<ChainCounters>, IndexerError> {
    let rows = db
        .query("SELECT chain, committed, proven, executed FROM l1_chains ORDER BY chain", &[])
        .await
        .map_err(IndexerError::db)?;
    Ok(rows
        .iter()
        .map(|r| ChainCounters {
            chain: r.get::<_, i32>(0) as u8,
            counters: L1Counters {
                committed: r.get::<_, i32>(1) as u32,
                proven: r.get::<_, i32>(2) as u32,
                executed: r.get::<_, i32>(3) as u32,
            },
        })
        .collect())
}

/// Stages of blocks, from each chain's counters.
pub struct Stager(Vec<ChainCounters>);

impl Stager {
    pub async fn load(db: &Client) -> Result<Self, IndexerError> {
        Ok(Stager(chains(db).await?))
    }

    pub fn of(&self, block: u32) -> zkl_rpc_api::explorer::Stages {
        self.0.iter().map(|c| (c.chain.to_string(), c.counters.stage_of(u64::from(block)))).collect()
    }
}

const BLOCK_COLUMNS: &str = "number, timestamp, capacity, old_root, new_root, commitment, op_count, tx_count";

fn block_summary(r: &Row, stages: &Stager) -> BlockSummary {
    let number = r.get::<_, i32>(0) as u32;
    BlockSummary {
        number,
        timestamp: r.get::<_, i64>(1) as u64,
        capacity: r.get::<_, i32>(2) as u32,
        old_root: r.get(3),
        new_root: r.get(4),
        commitment: r.get(5),
        ops: r.get::<_, i32>(6) as u32,
        txs: r.get::<_, i32>(7) as u32,
        l1: stages.of(number),
    }
}

/// Blocks numbered below `before`, newest first.
pub async fn blocks(db: &Client, before: Option<u32>, limit: u32) -> Result<Vec<BlockSummary>, IndexerError> {
    let stages = Stager::load(db).await?;
    let before = before.map_or(i64::MAX, i64::from);
    let rows = db
        .query(
            &format!("SELECT {BLOCK_COLUMNS} FROM blocks WHERE number < $1 ORDER BY number DESC LIMIT $2"),
            &[&before, &i64::from(limit)],
        )
        .await
        .map_err(IndexerError::db)?;
    Ok(rows.iter().map(|r| block_summary(r, &stages)).collect())
}

/// One block.
pub async fn block(db: &Client, number: u32) -> Result<Option<BlockSummary>, IndexerError> {
    let stages = Stager::load(db).await?;
    let row = db
        .query_opt(&format!("SELECT {BLOCK_COLUMNS} FROM blocks WHERE number = $1"), &[&(number as i32)])
        .await
        .map_err(IndexerError::db)?;
    Ok(row.map(|r| block_summary(&r, &stages)))
}

const OP_COLUMNS: &str = "o.pos, o.block, o.idx, o.hash, b.timestamp, o.op";

fn op_entry(r: &Row, stages: &Stager) -> Result<OpEntry, IndexerError> {
    let block = r.get::<_, i32>(1) as u32;
    let op: serde_json::Value = r.get(5);
    Ok(OpEntry {
        pos: r.get::<_, i64>(0) as u64,
        block,
        index: r.get::<_, i32>(2) as u32,
        hash: r.get(3),
        timestamp: r.get::<_, i64>(4) as u64,
        op: serde_json::from_value(op).map_err(|e| IndexerError::Database(format!("stored op: {e}")))?,
        l1: stages.of(block),
    })
}

/// The ops of a block, in order.
pub async fn block_ops(db: &Client, number: u32) -> Result<Vec<OpEntry>, IndexerError> {
    let stages = Stager::load(db).await?;
    let rows = db
        .query(
            &format!(
                "SELECT {OP_COLUMNS} FROM ops o JOIN blocks b ON b.number = o.block WHERE o.block = $1 ORDER BY o.pos"
            ),
            &[&(number as i32)],
        )
        .await
        .map_err(IndexerError::db)?;
    rows.iter().map(|r| op_entry(r, &stages)).collect()
}

/// The op of a tx or priority request (its latest inclusion).
pub async fn op_by_hash(db: &Client, hash: &str) -> Result<Option<OpEntry>, IndexerError> {
    let stages = Stager::load(db).await?;
    let row = db
        .query_opt(
            &format!(
                "SELECT {OP_COLUMNS} FROM ops o JOIN blocks b ON b.number = o.block WHERE o.hash = $1 \
                 ORDER BY o.pos DESC LIMIT 1"
            ),
            &[&hash.to_lowercase()],
        )
        .await
        .map_err(IndexerError::db)?;
    row.map(|r| op_entry(&r, &stages)).transpose()
}

/// A page of ops of the given kinds (all kinds when empty), optionally of one account.
pub async fn ops(db: &Client, kinds: &[&str], q: &HistoryQuery, limit: u32) -> Result<Page<OpEntry>, IndexerError> {
    let stages = Stager::load(db).await?;
    let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    let before = q.before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
    let all = kinds.is_empty();
    // One more than asked tells whether there is a next page.
    let rows = match q.account {
        Some(account) => {
            db.query(
                &format!(
                    "SELECT {OP_COLUMNS} FROM op_accounts a JOIN ops o ON o.pos = a.pos \
                     JOIN blocks b ON b.number = o.block \
                     WHERE a.account = $1 AND a.pos < $2 AND ($3 OR a.kind = ANY($4)) ORDER BY a.pos DESC LIMIT $5"
                ),
                &[&i64::from(account), &before, &all, &kinds, &(i64::from(limit) + 1)],
            )
            .await
        }
        None => {
            db.query(
                &format!(
                    "SELECT {OP_COLUMNS} FROM ops o JOIN blocks b ON b.number = o.block \
                     WHERE o.pos < $1 AND ($2 OR o.kind = ANY($3)) ORDER BY o.pos DESC LIMIT $4"
                ),
                &[&before, &all, &kinds, &(i64::from(limit) + 1)],
            )
            .await
        }
    }
    .map_err(IndexerError::db)?;
    let items = rows.iter().map(|r| op_entry(r, &stages)).collect::<Result<Vec<_>, _>>()?;
    Ok(page(items, limit, |e| e.pos))
}

fn page<T>(mut items: Vec<T>, limit: u32, pos: impl Fn(&T) -> u64) -> Page<T> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more { items.last().map(pos) } else { None };
    Page { items, next }
}

fn amount(r: &Row, i: usize) -> Result<u128, IndexerError> {
    let s: String = r.get(i);
    s.parse().map_err(|_| IndexerError::Database(format!("amount {s} does not fit 128 bits")))
}

/// A page of trades.
pub async fn trades(db: &Client, q: &TradeQuery, limit: u32) -> Result<Page<TradeEntry>, IndexerError> {
    let before = q.before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
    let base = q.base.map(i32::from);
    let quote = q.quote.map(i32::from);
    let account = q.account.map(i64::from);
    let rows = db
        .query(
            "SELECT t.pos, o.hash, t.time, t.base, t.quote, t.price::text, t.base_amount::text, \
             t.quote_amount::text, t.maker, t.maker_sub, t.taker, t.taker_sub, t.maker_is_sell \
             FROM trades t JOIN ops o ON o.pos = t.pos \
             WHERE t.pos < $1 AND ($2::int IS NULL OR t.base = $2) AND ($3::int IS NULL OR t.quote = $3) \
             AND ($4::bigint IS NULL OR t.pos IN (SELECT a.pos FROM op_accounts a \
               WHERE a.account = $4 AND a.kind = 'order_matching' AND a.pos < $1)) ORDER BY t.pos DESC LIMIT $5",
            &[&before, &base, &quote, &account, &(i64::from(limit) + 1)],
        )
        .await
        .map_err(IndexerError::db)?;
    let items = rows
        .iter()
        .map(|r| {
            let pos = r.get::<_, i64>(0) as u64;
            Ok(TradeEntry {
                pos,
                block: (pos >> zkl_rpc_api::explorer::POS_INDEX_BITS) as u32,
                hash: r.get(1),
                timestamp: r.get::<_, i64>(2) as u64,
                base: r.get::<_, i32>(3) as u16,
                quote: r.get::<_, i32>(4) as u16,
                price: amount(r, 5)?,
                base_amount: amount(r, 6)?,
                quote_amount: amount(r, 7)?,
                maker: r.get::<_, i64>(8) as u32,
                maker_sub: r.get::<_, i16>(9) as u8,
                taker: r.get::<_, i64>(10) as u32,
                taker_sub: r.get::<_, i16>(11) as u8,
                maker_is_sell: r.get(12),
            })
        })
        .collect::<Result<Vec<_>, IndexerError>>()?;
    Ok(page(items, limit, |t| t.pos))
}

/// A pair's candles of the last `limit` intervals of the range, oldest first. Only those
/// intervals are read (an explorer query never scans a pair's whole history); without an end,
/// the range ends with the pair's last trade.
pub async fn candles(db: &Client, q: &CandleQuery, limit: u32) -> Result<Vec<Candle>, IndexerError> {
    let (base, quote) = (i32::from(q.base), i32::from(q.quote));
    let interval = i64::from(q.interval);
    let to = match q.to {
        Some(t) => t.min(i64::MAX as u64 / 2) as i64,
        None => db
            .query_one(
                "SELECT COALESCE(MAX(time), -1) + 1 FROM trades WHERE base = $1 AND quote = $2",
                &[&base, &quote],
            )
            .await
            .map_err(IndexerError::db)?
            .get::<_, i64>(0),
    };
    // The end of the interval holding the range's last second, and `limit` intervals back.
    let end = if to <= 0 { 0 } else { ((to - 1) / interval + 1) * interval };
    let from = q.from.map_or(0, |t| t.min(i64::MAX as u64 / 2) as i64).max(end - i64::from(limit) * interval);
    let rows = db
        .query(
            "SELECT (time / $3) * $3 AS start, \
               ((array_agg(price ORDER BY pos))[1])::text AS open, MAX(price)::text AS high, \
               MIN(price)::text AS low, ((array_agg(price ORDER BY pos DESC))[1])::text AS close, \
               SUM(base_amount)::text AS volume, SUM(quote_amount)::text AS quote_volume, COUNT(*) AS trades \
             FROM trades WHERE base = $1 AND quote = $2 AND time >= $4 AND time < $5 \
             GROUP BY 1 ORDER BY 1",
            &[&base, &quote, &interval, &from, &to],
        )
        .await
        .map_err(IndexerError::db)?;
    rows.iter()
        .map(|r| {
            Ok(Candle {
                start: r.get::<_, i64>(0) as u64,
                open: amount(r, 1)?,
                high: amount(r, 2)?,
                low: amount(r, 3)?,
                close: amount(r, 4)?,
                volume: amount(r, 5)?,
                quote_volume: amount(r, 6)?,
                trades: r.get::<_, i64>(7) as u32,
            })
        })
        .collect()
}
