"""The schema: sql/ matches the SQLAlchemy definitions, init is idempotent, triggers bump."""
import pathlib

import pytest
from sqlalchemy import insert, update

from fscluster.commands.db import ddl_text
from fscluster.schema import metadata, v_domains, v_extensions

SQL_DIR = pathlib.Path(__file__).resolve().parent.parent / "sql"


@pytest.mark.parametrize("dialect", ["mariadb", "postgresql", "sqlite"])
def test_sql_files_match_schema(dialect):
    assert (SQL_DIR / f"{dialect}.sql").read_text() == ddl_text(dialect), \
        f"sql/{dialect}.sql drifted: regenerate with `fscluster db ddl {dialect}`"


def test_every_table_has_a_primary_key():
    assert all(table.primary_key.columns for table in metadata.sorted_tables)


def test_create_schema_twice_and_generation_bumps(any_db):
    any_db.create_schema()
    before = any_db.generation()
    with any_db.write.begin() as conn:
        conn.execute(insert(v_domains).values(domain_uuid="d1", domain_name="x.test",
                                              domain_enabled="true"))
        conn.execute(insert(v_extensions).values(extension_uuid="e1", domain_uuid="d1",
                                                 extension="100"))
        conn.execute(update(v_extensions).values(password="p"))
    assert any_db.generation() >= before + 3


def test_sql_file_loads_into_mariadb(mariadb_server):
    """The shipped DDL file, fed to the real server as an operator would, creates the schema."""
    import subprocess
    mariadb_server.sql("CREATE DATABASE IF NOT EXISTS ddl_check")
    subprocess.run(["mariadb", f"--socket={mariadb_server.socket}", "-uroot", "ddl_check"],
                   input=(SQL_DIR / "mariadb.sql").read_bytes(), check=True, timeout=60)
    tables = {row[0] for row in mariadb_server.sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema='ddl_check'")}
    assert {t.name for t in metadata.sorted_tables} <= tables
    triggers = mariadb_server.sql(
        "SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema='ddl_check'")
    assert triggers[0][0] == 33
