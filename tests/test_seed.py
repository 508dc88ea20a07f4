"""Seeding: realistic, reproducible, idempotent, on SQLite and real MariaDB."""
from sqlalchemy import func, select

from fscluster import config, seed
from fscluster.schema import v_dialplans, v_domains, v_extensions, v_sip_profiles


def count(db, table):
    with db.read.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_seed_is_idempotent_and_sized(any_db):
    vips = config.load(environ={}).vips
    first = seed.seed(any_db, domains=3, extensions=5, vips=vips)
    assert seed.seed(any_db, domains=3, extensions=5, vips=vips) == 0
    assert first > 0
    assert count(any_db, v_domains) == 3
    assert count(any_db, v_extensions) == 15
    assert count(any_db, v_sip_profiles) == len(vips)
    with any_db.read.connect() as conn:
        names = {r[0] for r in conn.execute(select(v_domains.c.domain_name))}
        demo_pw = conn.execute(select(v_extensions.c.password).join(
            v_domains, v_domains.c.domain_uuid == v_extensions.c.domain_uuid).where(
            v_domains.c.domain_name == "demo.local", v_extensions.c.extension == "1000")
        ).scalar_one()
        contexts = {r[0] for r in conn.execute(select(v_dialplans.c.dialplan_context))}
    assert seed.DEMO_DOMAIN in names
    assert demo_pw == seed.extension_password("demo.local", "1000")
    assert {"global", "demo.local"} <= contexts


def test_cli_seed_prints_progress_and_count(tmp_path, capsys, monkeypatch):
    from fscluster.cli import main
    monkeypatch.setenv("FSCLUSTER_DB_URL", f"sqlite:///{tmp_path}/cli.sqlite")
    assert main(["db", "seed", "--domains", "2", "--extensions", "3"]) == 0
    captured = capsys.readouterr()
    assert "inserted" in captured.out and "2 domains x 3 extensions" in captured.out
    assert "seeding: 3/3 batches" in captured.err
