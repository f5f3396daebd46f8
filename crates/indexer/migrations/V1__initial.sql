-- The indexer's schema (docs/indexer.md "Database"). Amounts are NUMERIC(39, 0): every u128.
-- An op's position `pos` is block * 2^20 + index: one ordering for every list.

CREATE TABLE blocks (
    number      INTEGER PRIMARY KEY,
    timestamp   BIGINT  NOT NULL,
    capacity    INTEGER NOT NULL,
    old_root    TEXT    NOT NULL,
    new_root    TEXT    NOT NULL,
    commitment  TEXT    NOT NULL,
    op_count    INTEGER NOT NULL,
    tx_count    INTEGER NOT NULL
);

-- Every op but no-ops, as the node's API shows it (`op`, JSON), and its kind for filtering.
CREATE TABLE ops (
    pos     BIGINT  PRIMARY KEY,
    block   INTEGER NOT NULL REFERENCES blocks (number) ON DELETE CASCADE,
    idx     INTEGER NOT NULL,
    hash    TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    op      JSONB   NOT NULL
);
CREATE INDEX ops_hash ON ops (hash);
CREATE INDEX ops_kind ON ops (kind, pos);

-- The accounts an op involves (sender and recipient, maker and taker, ...).
CREATE TABLE op_accounts (
    account BIGINT NOT NULL,
    pos     BIGINT NOT NULL REFERENCES ops (pos) ON DELETE CASCADE,
    kind    TEXT   NOT NULL,
    PRIMARY KEY (account, pos)
);
CREATE INDEX op_accounts_kind ON op_accounts (account, kind, pos);

CREATE TABLE trades (
    pos           BIGINT        PRIMARY KEY REFERENCES ops (pos) ON DELETE CASCADE,
    time          BIGINT        NOT NULL,
    base          INTEGER       NOT NULL,
    quote         INTEGER       NOT NULL,
    price         NUMERIC(39,0) NOT NULL,
    base_amount   NUMERIC(39,0) NOT NULL,
    quote_amount  NUMERIC(39,0) NOT NULL,
    maker         BIGINT        NOT NULL,
    maker_sub     SMALLINT      NOT NULL,
    taker         BIGINT        NOT NULL,
    taker_sub     SMALLINT      NOT NULL,
    maker_is_sell BOOLEAN       NOT NULL
);
CREATE INDEX trades_pair ON trades (base, quote, pos);
CREATE INDEX trades_pair_time ON trades (base, quote, time);

-- Each settlement chain's counters as the node last reported them.
CREATE TABLE l1_chains (
    chain      INTEGER PRIMARY KEY,
    committed  INTEGER NOT NULL,
    proven     INTEGER NOT NULL,
    executed   INTEGER NOT NULL
);

-- One row: the node's last sealed block when last asked.
CREATE TABLE node_tip (
    id     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    block  INTEGER NOT NULL
);
