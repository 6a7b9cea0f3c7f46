"""Who am I, and the reference lists: regions (the membership's subtree), units, channels, rounds."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from tracker.api import schemas as sc
from tracker.api import serialize
from tracker.api.problems import ApiError
from tracker.api.registry import ApiContext, endpoint
from tracker.models import Channel, Region, Round, Unit, UnitAlias
from tracker.permissions import visible_regions

TAG = "reference"
ERRORS = (401, 422, 429)


@endpoint("GET", "/me", name="me", tag=TAG, response=sc.MeOut, errors=(401, 429),
          summary="当前令牌的身份 · The token's user and membership",
          description="令牌绑定的用户和身份；令牌的权限与该身份在网页上完全一致。\n\nThe user and membership the "
                      "token is bound to; it may do exactly what that membership may do on the web.")
def me(ctx: ApiContext) -> sc.MeOut:
    user = ctx.membership.user
    return sc.MeOut(user=sc.Ref(id=user.id, name=user.display_name), username=user.username,
                    membership=serialize.membership(ctx.membership), token=serialize.token(ctx.token))


@endpoint("GET", "/regions", name="list_regions", tag=TAG, query=sc.RegionQuery, response=sc.RegionList,
          errors=ERRORS, summary="地区 · Regions of the membership's subtree",
          description="本身份所在地区及其下级，按层级树排序。\n\nThe membership's region and everything below it, "
                      "in tree order.")
def list_regions(ctx: ApiContext, query: sc.RegionQuery) -> sc.RegionList:
    rows = visible_regions(ctx.membership)
    if query.q.strip():
        rows = rows.where(Region.name.contains(query.q.strip(), autoescape=True))
    if query.level is not None:
        rows = rows.where(Region.level == query.level)
    if query.parent is not None:
        rows = rows.where(Region.parent_id == query.parent)
    return sc.RegionList(items=[serialize.region(r) for r in ctx.s.scalars(rows.order_by(Region.path).limit(5000))])


@endpoint("GET", "/units", name="list_units", tag=TAG, query=sc.UnitQuery, response=sc.UnitList, errors=ERRORS,
          summary="单位 · Units",
          description="在用的单位（可按地区含下级、名称或简称筛选），用于交办、改派和验收单位。\n\nActive units, "
                      "by region subtree, name or alias: for assigning, reassigning and the verifying unit.")
def list_units(ctx: ApiContext, query: sc.UnitQuery) -> sc.UnitList:
    rows = (select(Unit).join(Region, Unit.region_id == Region.id).where(Unit.active.is_(True))
            .options(selectinload(Unit.aliases), selectinload(Unit.region)))
    if query.region is not None:
        region = ctx.s.get(Region, query.region)
        if region is None:
            raise ApiError("VALIDATION_ERROR", "地区不存在")
        rows = rows.where(Region.path.startswith(region.path, autoescape=True))
    if query.q.strip():
        q = query.q.strip()
        alias = select(UnitAlias.unit_id).where(UnitAlias.alias.contains(q, autoescape=True))
        rows = rows.where(or_(Unit.name.contains(q, autoescape=True), Unit.id.in_(alias)))
    return sc.UnitList(items=[serialize.unit(u) for u in ctx.s.scalars(rows.order_by(Region.path, Unit.name)
                                                                         .limit(5000))])


@endpoint("GET", "/channels", name="list_channels", tag=TAG, response=sc.ChannelList, errors=(401, 429),
          summary="问题来源 · Channels",
          description="问题来源及其销号层级、初验层级。\n\nChannels with their closing and pre-verify levels.")
def list_channels(ctx: ApiContext) -> sc.ChannelList:
    rows = ctx.s.scalars(select(Channel).order_by(Channel.position, Channel.id).options(selectinload(Channel.aliases)))
    return sc.ChannelList(items=[serialize.channel(c) for c in rows])


@endpoint("GET", "/rounds", name="list_rounds", tag=TAG, response=sc.RoundList, errors=(401, 429),
          summary="批次/轮次 · Rounds", description="批次/轮次及其别名。\n\nRounds with their aliases.")
def list_rounds(ctx: ApiContext) -> sc.RoundList:
    rows = ctx.s.scalars(select(Round).order_by(Round.position, Round.id).options(selectinload(Round.aliases)))
    return sc.RoundList(items=[serialize.round_(r) for r in rows])
