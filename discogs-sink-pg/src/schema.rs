//! Tables, indexes and views, created and upgraded by versioned migrations.
//!
//! Migrations run at start-up ([`migrate`]) under a session advisory lock keyed by the
//! schema name, so replicas starting together apply each one once; applied versions are
//! rows of `schema_migrations`. Each migration runs in its own transaction.

use discogs_model::RecordKind;
use postgres_types::Type;
use tokio_postgres::Client;

use crate::PgSinkError;

/// First key of the advisory lock taken while migrating (the second is the schema's hash).
const MIGRATION_LOCK: i32 = 0x0d15_c065;

/// The table of a kind: `artists`, `labels`, `masters`, `releases`.
pub(crate) fn table(kind: RecordKind) -> &'static str {
    kind.plural()
}

/// Columns written by the sink, in COPY order: `id`, `sha256`, the extracted columns,
/// `data`. (`search` is generated, `updated_at` defaults to `now()`.)
pub(crate) fn columns(kind: RecordKind) -> &'static [(&'static str, Type)] {
    const ARTISTS: &[(&str, Type)] = &[
        ("id", Type::INT8),
        ("sha256", Type::BYTEA),
        ("name", Type::TEXT),
        ("realname", Type::TEXT),
        ("data", Type::JSONB),
    ];
    const LABELS: &[(&str, Type)] = &[
        ("id", Type::INT8),
        ("sha256", Type::BYTEA),
        ("name", Type::TEXT),
        ("parent_id", Type::INT8),
        ("data", Type::JSONB),
    ];
    const MASTERS: &[(&str, Type)] = &[
        ("id", Type::INT8),
        ("sha256", Type::BYTEA),
        ("title", Type::TEXT),
        ("year", Type::INT4),
        ("main_release", Type::INT8),
        ("genres", Type::TEXT_ARRAY),
        ("styles", Type::TEXT_ARRAY),
        ("data", Type::JSONB),
    ];
    const RELEASES: &[(&str, Type)] = &[
        ("id", Type::INT8),
        ("sha256", Type::BYTEA),
        ("title", Type::TEXT),
        ("year", Type::INT4),
        ("released", Type::TEXT),
        ("country", Type::TEXT),
        ("status", Type::TEXT),
        ("master_id", Type::INT8),
        ("genres", Type::TEXT_ARRAY),
        ("styles", Type::TEXT_ARRAY),
        ("data", Type::JSONB),
    ];
    match kind {
        RecordKind::Artist => ARTISTS,
        RecordKind::Label => LABELS,
        RecordKind::Master => MASTERS,
        RecordKind::Release => RELEASES,
    }
}

/// `id, sha256, ..., data`.
pub(crate) fn column_list(kind: RecordKind) -> String {
    columns(kind)
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The secondary indexes of a kind's table: `(name, definition after ON table)`.
/// Dropped for a first load and rebuilt after it.
pub(crate) fn indexes(kind: RecordKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        RecordKind::Artist => &[
            ("artists_name_idx", "(name)"),
            ("artists_realname_idx", "(realname)"),
            ("artists_search_idx", "USING gin (search)"),
            ("artists_data_idx", "USING gin (data jsonb_path_ops)"),
        ],
        RecordKind::Label => &[
            ("labels_name_idx", "(name)"),
            ("labels_parent_id_idx", "(parent_id)"),
            ("labels_search_idx", "USING gin (search)"),
            ("labels_data_idx", "USING gin (data jsonb_path_ops)"),
        ],
        RecordKind::Master => &[
            ("masters_title_idx", "(title)"),
            ("masters_year_idx", "(year)"),
            ("masters_main_release_idx", "(main_release)"),
            ("masters_genres_idx", "USING gin (genres)"),
            ("masters_styles_idx", "USING gin (styles)"),
            ("masters_search_idx", "USING gin (search)"),
            ("masters_data_idx", "USING gin (data jsonb_path_ops)"),
        ],
        RecordKind::Release => &[
            ("releases_title_idx", "(title)"),
            ("releases_year_idx", "(year)"),
            ("releases_released_idx", "(released)"),
            ("releases_country_idx", "(country)"),
            ("releases_status_idx", "(status)"),
            ("releases_master_id_idx", "(master_id)"),
            ("releases_genres_idx", "USING gin (genres)"),
            ("releases_styles_idx", "USING gin (styles)"),
            ("releases_search_idx", "USING gin (search)"),
            // The whole record minus its long, rarely-filtered parts (the generated
            // `facets` column, migration 5): a fifth of the keys, and a fifth of the build
            // time of a GIN over all of `data`.
            ("releases_facets_idx", "USING gin (facets jsonb_path_ops)"),
        ],
    }
}

/// Indexes created by a migration after 2 (on a column that migration adds); migration 2
/// leaves them out.
const LATER_INDEXES: &[&str] = &["releases_facets_idx"];

/// Migration 2: `CREATE INDEX IF NOT EXISTS` for every secondary index of `kind` but
/// [`LATER_INDEXES`].
fn create_indexes_sql(schema: &str, kind: RecordKind) -> String {
    create_index_statements(schema, kind)
        .into_iter()
        .zip(indexes(kind))
        .filter(|(_, (name, _))| !LATER_INDEXES.contains(name))
        .map(|(sql, _)| sql)
        .collect()
}

/// One `CREATE INDEX IF NOT EXISTS …;\n` statement per secondary index of `kind`, in the
/// order of [`indexes`].
pub(crate) fn create_index_statements(schema: &str, kind: RecordKind) -> Vec<String> {
    let t = table(kind);
    indexes(kind)
        .iter()
        .map(|(name, def)| {
            let def = def.replace("{s}", &format!("\"{schema}\""));
            format!("CREATE INDEX IF NOT EXISTS {name} ON \"{schema}\".{t} {def};\n")
        })
        .collect()
}

/// `DROP INDEX IF EXISTS` for every secondary index of `kind`.
pub(crate) fn drop_indexes_sql(schema: &str, kind: RecordKind) -> String {
    indexes(kind)
        .iter()
        .map(|(name, _)| format!("DROP INDEX IF EXISTS \"{schema}\".{name};\n"))
        .collect()
}

/// Migration 5: the containment index on releases moves from the expression
/// `release_facets(data)` to a stored generated column `facets`, and the table keeps a
/// quarter of each page free, so that an update which changes no indexed value (the
/// track list, notes, credits, images...) is a HOT update: the new row version goes on
/// the same page and no index gets a new entry. With the expression index every update
/// inserted into all eleven indexes, because `data` itself changes. `facets` is stored
/// uncompressed (`EXTERNAL`): a compressed stored value never compares equal to the
/// freshly computed one, which would rule HOT out again. On a filled table this rewrites
/// it once.
fn release_facets_sql(s: &str) -> String {
    format!(
        r#"
ALTER TABLE "{s}".releases SET (fillfactor = 75);
DROP INDEX IF EXISTS "{s}".releases_facets_idx;
ALTER TABLE "{s}".releases
    ADD COLUMN facets JSONB GENERATED ALWAYS AS ("{s}".release_facets(data)) STORED,
    ALTER COLUMN facets SET STORAGE EXTERNAL;
CREATE INDEX releases_facets_idx ON "{s}".releases USING gin (facets jsonb_path_ops);
"#
    )
}

/// A temporary staging table for `kind` on this connection, emptied at each commit.
pub(crate) fn staging_sql(schema: &str, kind: RecordKind) -> String {
    let t = table(kind);
    let cols = column_list(kind);
    format!(
        "CREATE TEMP TABLE IF NOT EXISTS stage_{t} ON COMMIT DELETE ROWS AS \
         SELECT {cols} FROM \"{schema}\".{t} WITH NO DATA;\n"
    )
}

fn tables_sql(s: &str) -> String {
    format!(
        r#"
CREATE TABLE "{s}".artists (
    id BIGINT PRIMARY KEY,
    sha256 BYTEA NOT NULL,
    name TEXT NOT NULL,
    realname TEXT,
    data JSONB NOT NULL,
    search TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', name || ' ' || coalesce(realname, ''))) STORED,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE "{s}".labels (
    id BIGINT PRIMARY KEY,
    sha256 BYTEA NOT NULL,
    name TEXT NOT NULL,
    parent_id BIGINT,
    data JSONB NOT NULL,
    search TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', name)) STORED,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE "{s}".masters (
    id BIGINT PRIMARY KEY,
    sha256 BYTEA NOT NULL,
    title TEXT NOT NULL,
    year INT,
    main_release BIGINT,
    genres TEXT[] NOT NULL DEFAULT '{{}}',
    styles TEXT[] NOT NULL DEFAULT '{{}}',
    data JSONB NOT NULL,
    search TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', title)) STORED,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE "{s}".releases (
    id BIGINT PRIMARY KEY,
    sha256 BYTEA NOT NULL,
    title TEXT NOT NULL,
    year INT,
    released TEXT,
    country TEXT,
    status TEXT,
    master_id BIGINT,
    genres TEXT[] NOT NULL DEFAULT '{{}}',
    styles TEXT[] NOT NULL DEFAULT '{{}}',
    data JSONB NOT NULL,
    search TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', title)) STORED,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- What the containment index on releases covers: the record without its track list,
-- notes, credits, identifiers, companies, videos and images (since migration 5 stored
-- as the column `facets`: query `WHERE facets @> '{{"formats": [{{"name": "Vinyl"}}]}}'`).
CREATE FUNCTION "{s}".release_facets(data JSONB) RETURNS JSONB
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT data - '{{tracklist,notes,extra_artists,identifiers,companies,videos,images,data_quality}}'::text[] $$;
-- lz4 TOAST compression where the server was built with it (PostgreSQL 14+): half the
-- server CPU of the default pglz for ~3 KB JSONB rows.
DO $$
BEGIN
    ALTER TABLE "{s}".artists ALTER COLUMN data SET COMPRESSION lz4;
    ALTER TABLE "{s}".labels ALTER COLUMN data SET COMPRESSION lz4;
    ALTER TABLE "{s}".masters ALTER COLUMN data SET COMPRESSION lz4;
    ALTER TABLE "{s}".releases ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR syntax_error OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 compression not available, keeping the default';
END $$;
"#
    )
}

fn views_sql(s: &str) -> String {
    format!(
        r#"
CREATE VIEW "{s}".release_artists AS
SELECT r.id AS release_id, a.ord::int AS position, (a.e->>'id')::bigint AS artist_id,
       a.e->>'name' AS name, a.e->>'anv' AS anv, a.e->>'join' AS join_text
FROM "{s}".releases r, jsonb_array_elements(r.data->'artists') WITH ORDINALITY AS a(e, ord);

CREATE VIEW "{s}".release_credits AS
SELECT r.id AS release_id, a.ord::int AS position, (a.e->>'id')::bigint AS artist_id,
       a.e->>'name' AS name, a.e->>'anv' AS anv, a.e->>'role' AS role, a.e->>'tracks' AS tracks
FROM "{s}".releases r, jsonb_array_elements(r.data->'extra_artists') WITH ORDINALITY AS a(e, ord);

CREATE VIEW "{s}".release_labels AS
SELECT r.id AS release_id, l.ord::int AS position, (l.e->>'id')::bigint AS label_id,
       l.e->>'name' AS name, l.e->>'catno' AS catno
FROM "{s}".releases r, jsonb_array_elements(r.data->'labels') WITH ORDINALITY AS l(e, ord);

CREATE VIEW "{s}".release_genres AS
SELECT r.id AS release_id, g.genre FROM "{s}".releases r, unnest(r.genres) AS g(genre);

CREATE VIEW "{s}".release_styles AS
SELECT r.id AS release_id, st.style FROM "{s}".releases r, unnest(r.styles) AS st(style);

CREATE VIEW "{s}".release_tracks AS
SELECT r.id AS release_id, t.ord::int AS track_index, t.e->>'position' AS position,
       t.e->>'title' AS title, t.e->>'duration' AS duration, t.e->'artists' AS artists,
       t.e->'extra_artists' AS credits, t.e->'sub_tracks' AS sub_tracks
FROM "{s}".releases r, jsonb_array_elements(r.data->'tracklist') WITH ORDINALITY AS t(e, ord);

CREATE VIEW "{s}".master_artists AS
SELECT m.id AS master_id, a.ord::int AS position, (a.e->>'id')::bigint AS artist_id,
       a.e->>'name' AS name, a.e->>'anv' AS anv, a.e->>'join' AS join_text
FROM "{s}".masters m, jsonb_array_elements(m.data->'artists') WITH ORDINALITY AS a(e, ord);
"#
    )
}

fn extraction_sql(s: &str) -> String {
    format!(
        r#"
-- The ids each written batch carried, one row per batch (never one per record), under
-- the extraction (dump version) they came from; read by the purge, then deleted.
-- UNLOGGED: after a crash it is empty, and the purge then refuses (too few ids).
CREATE UNLOGGED TABLE "{s}".extraction_ids (
    extraction TEXT NOT NULL,
    kind TEXT NOT NULL,
    ids BIGINT[] NOT NULL,
    written_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX extraction_ids_extraction_kind_idx ON "{s}".extraction_ids (extraction, kind);
"#
    )
}

/// The migrations, in order: `(version, name, SQL for a schema)`. Never edit an applied
/// one; add a new version.
/// One migration: version, name, and the SQL for a schema name.
pub(crate) type Migration = (i32, &'static str, fn(&str) -> String);

pub(crate) fn migrations() -> [Migration; 5] {
    [
        (1, "tables", tables_sql),
        (2, "indexes", |s| {
            RecordKind::ALL
                .iter()
                .map(|k| create_indexes_sql(s, *k))
                .collect()
        }),
        (3, "views", views_sql),
        (4, "extraction ids", extraction_sql),
        (5, "release facets column", release_facets_sql),
    ]
}

/// Creates the schema when missing and applies the migrations not applied yet. Returns the
/// versions it applied.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<Vec<i32>, PgSinkError> {
    let pg = PgSinkError::pg;
    client
        .execute(
            "SELECT pg_advisory_lock($1, hashtext($2))",
            &[&MIGRATION_LOCK, &schema],
        )
        .await
        .map_err(pg("taking the migration lock"))?;
    let result = migrate_locked(client, schema).await;
    let unlock = client
        .execute(
            "SELECT pg_advisory_unlock($1, hashtext($2))",
            &[&MIGRATION_LOCK, &schema],
        )
        .await
        .map_err(pg("releasing the migration lock"));
    let applied = result?;
    unlock?;
    Ok(applied)
}

async fn migrate_locked(client: &mut Client, schema: &str) -> Result<Vec<i32>, PgSinkError> {
    let pg = PgSinkError::pg;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE TABLE IF NOT EXISTS \"{schema}\".schema_migrations (
                 version INT PRIMARY KEY,
                 name TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(pg("creating the schema"))?;
    let done: Vec<i32> = client
        .query(
            &format!("SELECT version FROM \"{schema}\".schema_migrations"),
            &[],
        )
        .await
        .map_err(pg("reading schema_migrations"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = Vec::new();
    for (version, name, sql) in migrations() {
        if done.contains(&version) {
            continue;
        }
        let tx = client
            .transaction()
            .await
            .map_err(pg("starting a migration"))?;
        tx.batch_execute(&sql(schema))
            .await
            .map_err(pg("applying a migration"))?;
        tx.execute(
            &format!("INSERT INTO \"{schema}\".schema_migrations (version, name) VALUES ($1, $2)"),
            &[&version, &name],
        )
        .await
        .map_err(pg("recording a migration"))?;
        tx.commit().await.map_err(pg("committing a migration"))?;
        tracing::info!(schema, version, name, "Applied migration.");
        applied.push(version);
    }
    Ok(applied)
}
