"""``fscluster render galera``: what each Galera DB node needs for HAProxy's health checks.

- ``galera-check-user.sql``: the check user the agent (and ``fscluster doctor`` on the PBXs)
  logs in as. USAGE only: ``SHOW GLOBAL STATUS`` needs no privilege. Run it once on any
  node; Galera replicates the account to the others.
- ``fscluster-galera-agent.service``: a systemd unit running ``fscluster galera agent`` on
  ``galera.agent_port``, the port the rendered haproxy.cfg's ``agent-check`` connects to.
"""
from fscluster.config import Config


def sql_string(value: str) -> str:
    """A MariaDB string literal (backslash and quote escaped: no SQL injection via config)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def render(config: Config, args=None) -> dict:
    user = sql_string(config.galera_check_user)
    password = sql_string(config.galera_check_password)
    sql = (f"-- fscluster health-check user (rendered by `fscluster render galera`)\n"
           f"CREATE USER IF NOT EXISTS {user}@'%' IDENTIFIED BY {password};\n"
           f"ALTER USER {user}@'%' IDENTIFIED BY {password};\n")
    unit = f"""# Rendered by `fscluster render galera`: the HAProxy agent beside this Galera node.
[Unit]
Description=fscluster Galera health agent (HAProxy agent-check on port {config.galera_agent_port})
After=mariadb.service

[Service]
ExecStart={config.fscluster_command} galera agent --listen 0.0.0.0:{config.galera_agent_port} --mysql 127.0.0.1:3306
Restart=always
RestartSec=1
DynamicUser=yes

[Install]
WantedBy=multi-user.target
"""
    return {"galera-check-user.sql": sql, "fscluster-galera-agent.service": unit}
