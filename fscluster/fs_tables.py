"""FreeSWITCH's own tables in the shared DB, as FreeSWITCH 1.10 creates them.

FreeSWITCH creates these itself (``sofia_glue.c`` for ``sip_registrations``,
``switch_core_sqldb.c`` for ``registrations``, ``channels``, ``calls``, ``recovery``); we
never create them in production. They are declared here because the takeover rewrites them
(re-homing ``hostname``) and the emulator creates them exactly as FreeSWITCH would. None has
a primary key upstream; Galera still replicates them (``wsrep_certify_nonPK`` is on by
default), so we add none either.
"""
from sqlalchemy import Column, Integer, MetaData, String, Table, Text

fs_metadata = MetaData()


def _cols(spec):
    """Build columns from FreeSWITCH's ``name TYPE`` list (VARCHAR size, INTEGER or TEXT)."""
    columns = []
    for item in spec.split(","):
        name, kind = item.split()
        if kind == "INTEGER":
            columns.append(Column(name, Integer))
        elif kind == "TEXT":
            columns.append(Column(name, Text))
        else:
            columns.append(Column(name, String(int(kind))))
    return columns


# sofia_glue.c: sofia_glue_init_sql, reg_sql
sip_registrations = Table("sip_registrations", fs_metadata, *_cols(
    "call_id 255,sip_user 255,sip_host 255,presence_hosts 255,contact 1024,status 255,"
    "ping_status 255,ping_count INTEGER,ping_time INTEGER,force_ping INTEGER,rpid 255,"
    "expires INTEGER,ping_expires INTEGER,user_agent 255,server_user 255,server_host 255,"
    "profile_name 255,hostname 255,network_ip 255,network_port 6,sip_username 255,"
    "sip_realm 255,mwi_user 255,mwi_host 255,orig_server_host 255,orig_hostname 255,"
    "sub_host 255"))

# switch_core_sqldb.c: create_registrations_sql
registrations = Table("registrations", fs_metadata, *_cols(
    "reg_user 256,realm 256,token 256,url TEXT,expires INTEGER,network_ip 256,"
    "network_port 256,network_proto 256,hostname 256,metadata 256"))

# switch_core_sqldb.c: create_channels_sql
channels = Table("channels", fs_metadata, *_cols(
    "uuid 256,direction 32,created 128,created_epoch INTEGER,name 1024,state 64,"
    "cid_name 1024,cid_num 256,ip_addr 256,dest 1024,application 128,application_data 4096,"
    "dialplan 128,context 128,read_codec 128,read_rate 32,read_bit_rate 32,write_codec 128,"
    "write_rate 32,write_bit_rate 32,secure 32,hostname 256,presence_id 4096,"
    "presence_data 4096,callstate 64,callee_name 1024,callee_num 256,callee_direction 5,"
    "call_uuid 256,sent_callee_name 1024,sent_callee_num 256"),
    # 20 293 VARCHAR characters: at utf8mb4's 4 bytes each the row exceeds MariaDB's 65 535-byte
    # limit (error 1118); FreeSWITCH's own CREATE works only in a 3-byte charset database.
    mysql_charset="utf8mb3")

# switch_core_sqldb.c: create_calls_sql
calls = Table("calls", fs_metadata, *_cols(
    "call_uuid 255,call_created 128,call_created_epoch INTEGER,caller_uuid 256,"
    "callee_uuid 256,hostname 256"))

# switch_core_sqldb.c: recovery_sql
recovery = Table("recovery", fs_metadata, *_cols(
    "runtime_uuid 255,technology 255,profile_name 255,hostname 255,uuid 255,metadata TEXT"))
