"""Reference data present in every installation: 湖南省, its 14 市州 and the channel list.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Written out literally (not imported from the app) so that this migration never changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PROVINCE = "湖南省"
CITIES = [  # 000 L498, in the province's usual order
    "长沙市", "株洲市", "湘潭市", "衡阳市", "邵阳市", "岳阳市", "常德市",
    "张家界市", "益阳市", "郴州市", "永州市", "怀化市", "娄底市", "湘西土家族苗族自治州",
]
# (name, closing level, 初验 level, aliases); levels: 0 省, 1 市州. None: the assigning level closes.
CHANNELS = [
    ("中央生态环境保护督察", 0, 1, ["中央环保督察", "中央环境保护督察"]),
    ("长江经济带生态环境警示片", 0, 1, ["长江经济带警示片"]),
    ("省级生态环境保护督察", None, None, ["省生态环境保护督察", "省环保督察"]),
    ("省生态环境警示片", None, None, ["省级生态环境警示片"]),
    ("省级河湖长巡查", None, None, ["河湖长巡查"]),
    ("全国人大执法检查", None, None, []),
    ("省委巡视", None, None, []),
    ("污染防治攻坚战交办", None, None, ["攻坚战交办"]),
    ("信访件", None, None, ["信访"]),
    ("绿盾专项行动", None, None, ["绿盾", "“绿盾”"]),
    ("12369环保举报热线", None, None, ["12369"]),
    ("专项排查", None, None, []),
]

region = sa.table("region", sa.column("id", sa.Integer), sa.column("name", sa.String),
                  sa.column("level", sa.Integer), sa.column("is_zone", sa.Boolean),
                  sa.column("parent_id", sa.Integer), sa.column("path", sa.String))
channel = sa.table("channel", sa.column("id", sa.Integer), sa.column("name", sa.String),
                   sa.column("closing_level", sa.Integer), sa.column("pre_verify_level", sa.Integer),
                   sa.column("position", sa.Integer))
channel_alias = sa.table("channel_alias", sa.column("channel_id", sa.Integer), sa.column("alias", sa.String))


def _insert(conn, table, values) -> int:
    return conn.execute(table.insert().values(**values).returning(table.c.id)).scalar_one()


def upgrade() -> None:
    conn = op.get_bind()
    province = _insert(conn, region, dict(name=PROVINCE, level=0, is_zone=False, parent_id=None, path=""))
    conn.execute(region.update().where(region.c.id == province).values(path=f"/{province}/"))
    for name in CITIES:
        city = _insert(conn, region, dict(name=name, level=1, is_zone=False, parent_id=province, path=""))
        conn.execute(region.update().where(region.c.id == city).values(path=f"/{province}/{city}/"))
    for position, (name, closing, pre_verify, aliases) in enumerate(CHANNELS):
        cid = _insert(conn, channel, dict(name=name, closing_level=closing, pre_verify_level=pre_verify,
                                          position=position))
        for alias in aliases:
            conn.execute(channel_alias.insert().values(channel_id=cid, alias=alias))


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(channel_alias.delete())
    conn.execute(channel.delete())
    conn.execute(region.delete().where(region.c.level == 1))
    conn.execute(region.delete().where(region.c.level == 0))
