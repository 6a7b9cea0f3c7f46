"""Demo data (演示数据) built from the seeds: five Hunan plans name the places, bodies and problems.

This module owns the demo's tables — regions below the 市州, units, users, rounds and about forty
rectification tasks, each with the history it went through — and a small engine that plays those
histories through the ordinary operations (``accounts``, ``operations.register_task``,
``operations.perform``, ``operations.edit_task``, ``operations.link_tasks``). Nothing is written
around the operations, so every row has its events, four-eyes and the closing rule hold, and
evidence files really exist in the upload folder.

The histories are dated in a fixed window (spring 2025 to November 2026). ``load`` moves the whole
window by whole years so that its last day falls in the year before ``now``: no event lies in the
future, deadlines stay month ends, and overdue tasks stay overdue. The reference data (湖南省, the
14 市州, the channels) comes from the migrations and is only looked up. The caller commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tracker import closure
from tracker.accounts import NewUser, add_membership, create_region, create_unit, create_user
from tracker.models import ROLE_LABELS, Channel, Membership, OutboxMail, Region, Round, Task, Unit, User
from tracker.operations import TaskFields, edit_task, link_tasks, perform, register_task
from tracker.storage import StoredFile, discard, store
from tracker.timeutil import SHANGHAI, local_date
from tracker.workflow import State

DEMO_PASSWORD = "zhenggai-demo"
ALREADY_LOADED = "演示数据已存在，未作改动"
# The day the organisation is set up, before the first task is registered.
SETUP_DAY = "2025-03-03"

# Deadline texts as government sheets write them; filled in with the (shifted) date.
MONTH_END = "{y}年{m}月底前"
YEAR_END = "{y}年底前"
BY_DAY = "{y}年{m}月{d}日前"
LONG_AFTER = "{y}年底前完成并长期坚持"

PROVINCE_OFFICE = "湖南省生态环境保护督察工作领导小组办公室"
XIANGTAN_OFFICE = "湘潭市突出环境问题整改办公室"
ZHUZHOU_OFFICE = "株洲市突出环境问题整改办公室"
YUEYANG_OFFICE = "岳阳市突出生态环境问题整改办公室"
YUHU_OFFICE = "雨湖区突出环境问题整改办公室"
PROVINCE_LAB = "湖南省环境保护科学研究院"
XIANGTAN_LAB = "湖南省湘潭生态环境监测中心"

# --- organisation ---------------------------------------------------------------------------------

# (name, parent, is_zone): the subdivisions the seeds name (001, 002 L115, 004), parents first.
REGIONS: list[tuple[str, str, bool]] = [
    ("雨湖区", "湘潭市", False),
    ("岳塘区", "湘潭市", False),
    ("湘潭县", "湘潭市", False),
    ("湘乡市", "湘潭市", False),
    ("韶山市", "湘潭市", False),
    ("湘潭高新区", "湘潭市", True),
    ("湘潭经开区", "湘潭市", True),
    ("易家湾镇", "岳塘区", False),  # 001 L620
    ("金石镇", "湘乡市", False),  # 001 L619
    ("荷塘区", "株洲市", False),
    ("芦淞区", "株洲市", False),
    ("石峰区", "株洲市", False),
    ("天元区", "株洲市", False),
    ("渌口区", "株洲市", False),
    ("醴陵市", "株洲市", False),
    ("攸县", "株洲市", False),
    ("茶陵县", "株洲市", False),
    ("炎陵县", "株洲市", False),
    ("株洲经开区", "株洲市", True),  # 004 L11
    ("平江县", "岳阳市", False),
    ("浯口镇", "平江县", False),  # 002 L115
    ("三阳乡", "平江县", False),
]

# The 17 signatories of 003 (L10–L26) with the short forms its clauses use.
PROVINCIAL_DEPARTMENTS: list[tuple[str, list[str]]] = [
    ("湖南省生态环境厅", ["省生态环境厅"]),
    ("湖南省发展和改革委员会", ["省发展改革委", "省发展和改革委"]),
    ("湖南省高级人民法院", ["省高级人民法院"]),
    ("湖南省人民检察院", ["省人民检察院"]),
    ("湖南省科学技术厅", ["省科技厅", "省科学技术厅"]),
    ("湖南省工业和信息化厅", ["省工业和信息化厅"]),
    ("湖南省公安厅", ["省公安厅"]),
    ("湖南省财政厅", ["省财政厅"]),
    ("湖南省人力资源和社会保障厅", ["省人力资源社会保障厅"]),
    ("湖南省自然资源厅", ["省自然资源厅"]),
    ("湖南省住房和城乡建设厅", ["省住房城乡建设厅", "省住房和城乡建设厅"]),
    ("湖南省交通运输厅", ["省交通运输厅"]),
    ("湖南省水利厅", ["省水利厅"]),
    ("湖南省农业农村厅", ["省农业农村厅"]),
    ("湖南省应急管理厅", ["省应急管理厅"]),
    ("湖南省林业局", ["省林业局"]),
    ("国家矿山安全监察局湖南局", ["国家矿山安监局湖南局"]),
]

# (name, region, kind, aliases)
OTHER_UNITS: list[tuple[str, str, str, list[str]]] = [
    # 督察办 / 突改办: always units of their own (DESIGN §2); 001 L29 and 004 L103 name them.
    (PROVINCE_OFFICE, "湖南省", "coordinating", ["省督察办"]),
    (XIANGTAN_OFFICE, "湘潭市", "coordinating", ["湘潭市突改办"]),
    (ZHUZHOU_OFFICE, "株洲市", "coordinating", ["株洲市突改办"]),
    (YUEYANG_OFFICE, "岳阳市", "coordinating", ["岳阳市突改办"]),
    (YUHU_OFFICE, "雨湖区", "coordinating", ["雨湖区突改办"]),
    # City bureaus, the counterparts of 003's departments (003 L6).
    ("湘潭市生态环境局", "湘潭市", "department", []),
    ("湘潭市水利局", "湘潭市", "department", []),
    ("湘潭市自然资源和规划局", "湘潭市", "department", []),
    ("湘潭市住房和城乡建设局", "湘潭市", "department", ["湘潭市住建局"]),
    ("湘潭市交通运输局", "湘潭市", "department", []),
    ("湘潭市城市管理和综合执法局", "湘潭市", "department", ["湘潭市城管执法局"]),
    ("湘潭市农业农村局", "湘潭市", "department", []),
    ("湘潭市生态环境局雨湖分局", "雨湖区", "department", ["雨湖生态环境分局"]),
    ("株洲市生态环境局", "株洲市", "department", []),
    ("株洲市水利局", "株洲市", "department", []),
    ("株洲市自然资源和规划局", "株洲市", "department", []),
    ("株洲市住房和城乡建设局", "株洲市", "department", ["株洲市住建局"]),
    ("株洲市林业局", "株洲市", "department", []),
    ("岳阳市生态环境局", "岳阳市", "department", []),
    ("岳阳市生态环境局平江分局", "平江县", "department", ["平江生态环境分局"]),
    # City, county and township governments, and the 管委会 of the 功能区.
    ("长沙市人民政府", "长沙市", "government", []),
    ("株洲市人民政府", "株洲市", "government", []),
    ("湘潭市人民政府", "湘潭市", "government", []),
    ("益阳市人民政府", "益阳市", "government", []),
    ("张家界市人民政府", "张家界市", "government", []),
    ("雨湖区人民政府", "雨湖区", "government", []),
    ("岳塘区人民政府", "岳塘区", "government", []),
    ("湘潭县人民政府", "湘潭县", "government", []),
    ("湘乡市人民政府", "湘乡市", "government", []),
    ("韶山市人民政府", "韶山市", "government", []),
    ("湘潭高新技术产业开发区管理委员会", "湘潭高新区", "government", ["湘潭高新区管委会"]),
    ("湘潭经济技术开发区管理委员会", "湘潭经开区", "government", ["湘潭经开区管委会"]),
    ("荷塘区人民政府", "荷塘区", "government", []),
    ("芦淞区人民政府", "芦淞区", "government", []),
    ("石峰区人民政府", "石峰区", "government", []),
    ("天元区人民政府", "天元区", "government", []),
    ("渌口区人民政府", "渌口区", "government", []),
    ("醴陵市人民政府", "醴陵市", "government", []),
    ("攸县人民政府", "攸县", "government", []),
    ("茶陵县人民政府", "茶陵县", "government", []),
    ("炎陵县人民政府", "炎陵县", "government", []),
    ("株洲经济技术开发区管理委员会", "株洲经开区", "government", ["株洲经开区管委会"]),
    ("平江县人民政府", "平江县", "government", []),
    ("浯口镇人民政府", "浯口镇", "government", []),
    ("三阳乡人民政府", "三阳乡", "government", []),
    # Enterprises the seeds name (001 L583–L584).
    ("湘潭钢铁集团有限公司", "岳塘区", "enterprise", ["湘钢集团", "湘钢"]),
    ("湖南韶峰南方水泥有限公司", "湘乡市", "enterprise", ["韶峰南方水泥"]),
    # 第三方专业机构 that verify without logging in (001 L654).
    (PROVINCE_LAB, "湖南省", "third_party", ["省环科院"]),
    (XIANGTAN_LAB, "湘潭市", "third_party", ["湘潭生态环境监测中心"]),
]

# (username, display name, email or None, [(unit, role), ...]); every password is DEMO_PASSWORD.
USERS: list[tuple[str, str, str | None, list[tuple[str, str]]]] = [
    ("admin", "系统管理员", "admin@example.cn", [(PROVINCE_OFFICE, "admin")]),
    ("sheng_duban", "周立群", "zhouliqun@example.cn", [(PROVINCE_OFFICE, "supervisor")]),
    ("sheng_lingdao", "贺振华", "hezhenhua@example.cn", [(PROVINCE_OFFICE, "viewer")]),
    ("sheng_sthjt", "罗晓燕", "luoxiaoyan@example.cn", [("湖南省生态环境厅", "unit")]),
    ("sheng_shuili", "彭志刚", "pengzhigang@example.cn", [("湖南省水利厅", "unit")]),
    ("xiangtan_duban", "谭建国", "tanjianguo@example.cn", [(XIANGTAN_OFFICE, "supervisor")]),
    ("xiangtan_lingdao", "欧阳明", "ouyangming@example.cn", [(XIANGTAN_OFFICE, "viewer")]),
    ("xiangtan_sthj", "刘海波", "liuhaibo@example.cn", [("湘潭市生态环境局", "unit")]),
    ("xiangtan_zhujian", "曾丽娟", "zenglijuan@example.cn", [("湘潭市住房和城乡建设局", "unit")]),
    ("xiangtan_jiaotong", "胡志勇", "huzhiyong@example.cn", [("湘潭市交通运输局", "unit")]),
    ("xiangtan_zhengfu", "陈卫东", "chenweidong@example.cn", [("湘潭市人民政府", "unit")]),
    # A 雨湖区 officer seconded to the city's 专班: supervises the district, reads the city ledger.
    ("yuhu_duban", "李文涛", "liwentao@example.cn", [(YUHU_OFFICE, "supervisor"), (XIANGTAN_OFFICE, "viewer")]),
    ("yuhu_zhengfu", "张红梅", "zhanghongmei@example.cn", [("雨湖区人民政府", "unit")]),
    ("yuhu_sthj", "王磊", "wanglei@example.cn", [("湘潭市生态环境局雨湖分局", "unit")]),
    ("yuetang_zhengfu", "黄勇", "huangyong@example.cn", [("岳塘区人民政府", "unit")]),
    ("xiangtanxian_zhengfu", "易国庆", None, [("湘潭县人民政府", "unit")]),
    ("xiangxiang_zhengfu", "龙海燕", "longhaiyan@example.cn", [("湘乡市人民政府", "unit")]),
    ("xianggang", "邓建军", "dengjianjun@example.cn", [("湘潭钢铁集团有限公司", "unit")]),
    ("zhuzhou_duban", "唐春生", "tangchunsheng@example.cn", [(ZHUZHOU_OFFICE, "supervisor")]),
    ("zhuzhou_sthj", "谢芳", "xiefang@example.cn", [("株洲市生态环境局", "unit")]),
    ("zhuzhou_zhengfu", "钟伟", "zhongwei@example.cn", [("株洲市人民政府", "unit")]),
    ("shifeng_zhengfu", "袁明亮", "yuanmingliang@example.cn", [("石峰区人民政府", "unit")]),
    ("youxian_zhengfu", "段小平", "duanxiaoping@example.cn", [("攸县人民政府", "unit")]),
    ("yueyang_duban", "方志远", "fangzhiyuan@example.cn", [(YUEYANG_OFFICE, "supervisor")]),
    ("pingjiang_zhengfu", "吴德胜", None, [("平江县人民政府", "unit")]),
    ("changsha_zhengfu", "杨帆", "yangfan@example.cn", [("长沙市人民政府", "unit")]),
    ("yiyang_zhengfu", "蔡继红", "caijihong@example.cn", [("益阳市人民政府", "unit")]),
    ("zhangjiajie_zhengfu", "田向阳", "tianxiangyang@example.cn", [("张家界市人民政府", "unit")]),
]

# For the README: one row per membership.
DEMO_LOGINS: list[tuple[str, str, str]] = [
    (username, ROLE_LABELS[role], unit) for username, _, _, memberships in USERS for unit, role in memberships
]

# 批次/轮次 as the seeds write them (004 L158, 000 L55). Years from 2025 on move with the window.
ROUNDS = ["第一轮", "第一轮“回头看”", "第二轮", "2019年", "2020年", "2021年", "2023年", "2025年", "2026年"]

# --- the tasks ------------------------------------------------------------------------------------
#
# One dict per task: the ledger fields of 登记, the supervisor who registers it ("sup"), the lead
# unit's user ("lead"), the 整改方案 it files, and its history as steps (day, who, action, params).
# "monthly" expands into a report on about the 25th of each month, the percent moving along a line.
# Units are named, files are (kind, name), deadlines are (date, text template[, kind]).

ZY, CJ, SD = "中央生态环境保护督察", "长江经济带生态环境警示片", "省级生态环境保护督察"
GJ, XF = "污染防治攻坚战交办", "信访件"
XT_LETTERS = "第二轮中央生态环境保护督察交办湘潭市信访件"  # 001 L240

TASKS: list[dict[str, Any]] = [
    # From the seeds: 001 L240.
    {
        "key": "gangkou", "sup": "xiangtan_duban", "lead": "xiangtan_jiaotong",
        "channel": ZY, "round": "第二轮", "kind": "典型案例", "code": "XT-ZY2-DX-01", "region": "湘潭市",
        "category": "水", "problem_title": "中央生态环境保护督察“港口码头”典型案例",
        "title": "湘江湘潭段港口码头环境污染和岸线违规占用问题",
        "description": "中央生态环保督察通报“港口码头”典型案例：湘江湘潭段部分砂石码头无证经营、露天堆存，"
                       "装卸扬尘和冲洗废水直排湘江，岸线长期被占用，未按要求取缔和生态复绿。",
        "responsible_leader": "湘潭市人民政府分管副市长", "contact": "市交通运输局 胡志勇 0731-58220101",
        "plan": {
            "target": "非法码头全部取缔并完成岸线复绿，保留码头防尘和污水收集设施全部建成运行，"
                      "湘江岸线不再被违规占用。",
            "measures": "1.逐一摸排建立“一码头一方案”；2.依法取缔无证码头，拆除设施、清运堆料；3.保留码头实施封闭料仓、"
                        "喷淋抑尘和冲洗废水收集回用改造；4.取缔岸线实施生态复绿；5.建立港口码头联合执法巡查机制。",
            "milestones": [("2025-08-31", "完成12处非法码头取缔及设施拆除", 40),
                           ("2025-12-31", "7处保留码头完成防尘和污水收集设施改造", 70),
                           ("2026-05-31", "完成岸线生态复绿并通过市级核查", 95)],
        },
        "steps": [
            ("2025-04-10", "sup", "register"),
            ("2025-04-10", "sup", "assign", {
                "leads": ["湘潭市交通运输局"],
                "participants": ["湘潭市水利局", "湘潭市自然资源和规划局", "湘潭市生态环境局"],
                "deadline": ("2026-06-30", MONTH_END)}),
            ("2025-04-14", "lead", "sign"),
            ("2025-05-06", "lead", "submit_plan"),
            ("2025-05-12", "sup", "approve_plan", {"opinion": "方案可行，同意实施；请每月25日前报送进展。"}),
            ("2025-05-26", "lead", "monthly", {
                "until": "2026-10-25", "from": 10, "to": 90, "met": {"2025-08": [0], "2025-12": [1]},
                "first_files": [("before", "整改前码头岸线照片.png")],
                "texts": ["完成湘江沿岸码头逐一摸排，确定取缔12处、规范提升7处，形成“一码头一方案”。",
                          "非法码头设施拆除和堆料清运有序推进，已向码头经营者下达限期整改通知。",
                          "保留码头封闭料仓和喷淋抑尘设施进入安装调试阶段，冲洗废水收集池完成主体施工。",
                          "取缔岸线复绿受汛期影响暂缓施工，已调整施工计划，汛后集中推进。",
                          "岸线复绿完成约八成，剩余地段正在补植，联合执法巡查未发现反弹。"]}),
            ("2026-07-06", "sup", "edit", {"remarks": "已逾期：岸线复绿受汛期影响滞后，"
                                                      "市突改办已函告市交通运输局加快推进。"}),
        ],
    },
    # From the seeds: 001 L240 (a 中央 信访件 with its 信访人).
    {
        "key": "zhongcai", "sup": "xiangtan_duban", "lead": "xiangxiang_zhengfu",
        "channel": ZY, "round": "第二轮", "kind": "交办信访件", "code": "XT-ZY2-XF-017", "region": "湘乡市",
        "category": "大气", "problem_title": XT_LETTERS,
        "title": "中材日新矿开采粉尘和运输扬尘扰民",
        "description": "信访人反映中材日新矿开采爆破和矿石运输粉尘大，运输车辆带泥上路，沉淀池废水外溢，"
                       "影响周边村民生活。",
        "responsible_leader": "湘乡市人民政府分管副市长", "contact": "湘乡市生态环境分局 谭卫 0731-56780017",
        "complainant": {"name": "刘某某", "phone": "13907320017", "address": "湘乡市日新村",
                        "content": "矿山爆破粉尘和运矿车扬尘很大，晒不了衣服，希望督察组督促整改。"},
        "plan": {
            "target": "矿区及运输道路扬尘得到有效控制，废水不外排，厂界颗粒物和噪声达标，信访人满意。",
            "measures": "1.硬化矿区运输道路，设置洗车平台和喷淋抑尘设施；2.对已开采边坡实施复绿；"
                        "3.扩建沉淀池，废水循环利用；4.调整爆破作业时间，开展厂界监测。",
            "milestones": [("2025-07-31", "完成运输道路硬化和喷淋抑尘设施建设", 40),
                           ("2025-10-31", "完成已开采边坡复绿和沉淀池改造", 80)],
        },
        "steps": [
            ("2025-04-11", "sup", "register"),
            ("2025-04-11", "sup", "assign", {"leads": ["湘乡市人民政府"], "participants": ["湘潭市自然资源和规划局"],
                                             "deadline": ("2025-12-31", YEAR_END)}),
            ("2025-04-15", "lead", "sign"),
            ("2025-05-08", "lead", "submit_plan"),
            ("2025-05-13", "sup", "approve_plan", {"opinion": "同意。"}),
            ("2025-05-26", "lead", "monthly", {
                "until": "2025-11-25", "from": 20, "to": 90, "met": {"2025-07": [0], "2025-10": [1]},
                "texts": ["运输道路硬化施工中，洗车平台已建成投用。", "喷淋抑尘设施全线运行，边坡复绿完成过半。",
                          "沉淀池扩建完成，废水全部回用，已回访信访人。"]}),
            ("2025-12-15", "lead", "submit", {
                "text": "整改措施全部完成，厂界颗粒物和噪声监测达标，信访人对整改结果表示认可。",
                "files": [("before", "整改前运输道路照片.png"), ("after", "整改后运输道路照片.png"),
                          ("monitoring", "厂界噪声及颗粒物监测报告.pdf")]}),
            ("2025-12-22", "xiangtan_duban", "pre_verify",
             {"opinion": "经市级现场核查，运输道路抑尘、边坡复绿和废水沉淀设施已建成运行，同意报省验收销号。"}),
            ("2026-01-09", "sheng_duban", "close", {
                "opinion": "经第三方现场核查和监测，整改到位，同意销号。", "closed_on": "2026-01-08",
                "verifier": XIANGTAN_LAB, "closure_doc_no": "湘督察办销〔2026〕3号",
                "files": [("document", "第三方验收意见书.pdf")]}),
        ],
    },
    # From the seeds: 001 L240.
    {
        "key": "xinbi", "sup": "xiangtan_duban", "lead": "xiangxiang_zhengfu",
        "channel": ZY, "round": "第二轮", "kind": "交办信访件", "code": "XT-ZY2-XF-023", "region": "湘乡市",
        "category": "水", "problem_title": XT_LETTERS,
        "title": "湘乡鑫碧和永鑫石材加工废水直排、粉尘污染",
        "description": "信访人反映湘乡鑫碧石材、永鑫石材切割废水未经处理排入附近沟渠，石粉浆随意堆放，加工粉尘大。",
        "responsible_leader": "湘乡市人民政府分管副市长", "contact": "湘乡市生态环境分局 谭卫 0731-56780017",
        "plan": {
            "target": "两家石材企业废水全部循环利用不外排，石粉浆规范处置，车间粉尘收集处理达标。",
            "measures": "1.建设压滤和废水循环系统；2.清理沟渠淤积石粉；3.车间封闭并加装湿法除尘；"
                        "4.石粉浆交有资质单位综合利用。",
            "milestones": [("2025-09-30", "两家企业完成废水循环利用设施改造", 50),
                           ("2026-06-30", "完成车间粉尘收集和石粉浆规范化堆存", 90)],
        },
        "steps": [
            ("2025-04-11", "sup", "register"),
            ("2025-04-11", "sup", "assign", {"leads": ["湘乡市人民政府"], "participants": ["湘潭市生态环境局"],
                                             "deadline": ("2026-09-30", MONTH_END)}),
            ("2025-04-16", "lead", "sign"),
            ("2025-05-09", "lead", "submit_plan"),
            ("2025-05-14", "sup", "approve_plan"),
            ("2025-05-26", "lead", "monthly", {
                "until": "2026-08-25", "from": 10, "to": 95, "met": {"2025-09": [0], "2026-06": [1]},
                "texts": ["两家企业已停产整顿，压滤设备完成采购。", "废水循环系统建成试运行，沟渠淤积石粉清理完毕。",
                          "车间封闭改造和湿法除尘设施安装完成。", "石粉浆与建材企业签订综合利用协议，已转运处置。"]}),
            # 虚假整改 for the verifier to catch: the "after" photo is 中材日新矿's photo sent again.
            ("2026-09-18", "lead", "submit", {"text": "两家企业整改全部完成，废水零排放，车间粉尘监测达标。",
                                             "files": [("before", "整改前石粉浆堆放照片.png"),
                                                       ("after", "整改后车间照片.png",
                                                        ("zhongcai", "after", "整改后运输道路照片.png")),
                                                       ("monitoring", "企业废气监测报告.pdf")]}),
            ("2026-10-10", "xiangtan_duban", "pre_verify",
             {"opinion": "市级初验：两家企业废水循环设施运行正常，现场未见外排，同意报省验收。",
              "files": [("document", "市级初验意见.pdf")]}),
        ],
    },
    # From the seeds: 001 L240, L620.
    {
        "key": "zhaoshan", "sup": "xiangtan_duban", "lead": "yuetang_zhengfu",
        "channel": ZY, "round": "第二轮", "kind": "交办信访件", "code": "XT-ZY2-XF-031", "region": "易家湾镇",
        "category": "噪声", "problem_title": XT_LETTERS,
        "title": "昭山片区武广高铁沿线噪声扰民",
        "description": "信访人反映武广高铁昭山段列车通过时噪声大，沿线居民夜间休息受影响，要求建设声屏障。",
        "responsible_leader": "岳塘区人民政府分管副区长", "contact": "岳塘区生态环境分局 周敏 0731-58550031",
        "complainant": {"name": "陈某某", "phone": "13975230031", "address": "湘潭市岳塘区易家湾镇昭山片区",
                        "content": "高铁噪声晚上影响睡觉，家里有老人小孩，希望安装隔音屏。"},
        "plan": {
            "target": "沿线居民区敏感点噪声达到《声环境质量标准》4b类要求。",
            "measures": "1.开展沿线敏感点噪声监测；2.协调铁路部门设计并建设声屏障；3.对临路居民实施隔声窗改造。",
            "milestones": [("2025-09-30", "完成沿线敏感点噪声监测和声屏障设计", 30),
                           ("2026-03-31", "完成居民区路段声屏障建设", 70),
                           ("2026-06-30", "敏感点噪声监测达标", 100)],
        },
        "steps": [
            ("2025-04-11", "sup", "register"),
            ("2025-04-11", "sup", "assign", {"leads": ["岳塘区人民政府"],
                                             "participants": ["湘潭市生态环境局", "湘潭市住房和城乡建设局"],
                                             "deadline": ("2026-06-30", MONTH_END)}),
            ("2025-04-17", "lead", "sign"),
            ("2025-05-12", "lead", "submit_plan"),
            ("2025-05-16", "sup", "approve_plan"),
            ("2025-06-25", "lead", "monthly", {
                "until": "2026-10-25", "from": 15, "to": 72, "met": {"2025-10": [0]},
                "texts": ["完成沿线12个敏感点噪声监测，夜间最大超标6分贝。", "声屏障设计方案已报铁路部门审查。",
                          "声屏障施工须利用铁路天窗期，铁路部门审批尚未完成，已提请市政府协调。",
                          "首段声屏障完成安装，临路住户隔声窗改造完成六成。"]}),
        ],
    },
    # From the seeds: 001 L240, L656.
    {
        "key": "shuangma", "sup": "xiangtan_duban", "lead": "yuhu_zhengfu",
        "channel": CJ, "round": "2019年", "kind": "披露问题", "code": "CJ2019-XT-02", "region": "雨湖区",
        "category": "固废", "problem_title": "2019年长江经济带生态环境警示片披露湘潭市问题",
        "title": "双马填埋场渗滤液处理不到位",
        "description": "警示片披露：双马垃圾填埋场渗滤液处理能力不足，调节池满溢，部分渗滤液经雨水沟外排，"
                       "填埋区未按要求覆盖。",
        "responsible_leader": "雨湖区人民政府区长", "contact": "雨湖区城管局 罗新 0731-58110002",
        "plan": {
            "target": "渗滤液全部收集处理、稳定达标排放，存量渗滤液清零，填埋场完成生态封场。",
            "measures": "1.扩容改造渗滤液处理站；2.应急转运处理存量渗滤液；3.雨污分流改造；4.实施生态封场和绿化；"
                        "5.建立在线监测。",
            "milestones": [("2025-09-30", "渗滤液处理站扩容改造完成并稳定运行", 40),
                           ("2025-12-31", "完成存量渗滤液清零", 70),
                           ("2026-05-31", "完成填埋场生态封场", 100)],
        },
        "steps": [
            ("2025-04-10", "sup", "register"),
            ("2025-04-10", "sup", "assign", {"leads": ["雨湖区人民政府"],
                                             "participants": ["湘潭市城市管理和综合执法局", "湘潭市生态环境局"],
                                             "deadline": ("2026-06-30", MONTH_END)}),
            ("2025-04-14", "lead", "sign"),
            ("2025-05-06", "lead", "submit_plan"),
            ("2025-05-12", "sup", "approve_plan", {"opinion": "方案可行，同意。封场工程须同步做好地下水监测。"}),
            ("2025-05-26", "lead", "monthly", {
                "until": "2026-05-25", "from": 12, "to": 95, "met": {"2025-09": [0], "2026-01": [1], "2026-05": [2]},
                "first_files": [("before", "整改前调节池照片.png")],
                "texts": ["渗滤液应急转运处理每日300吨，处理站扩容工程开工。", "处理站扩容完成调试，出水稳定达标。",
                          "存量渗滤液已清零，雨污分流改造完成。", "生态封场工程完成覆膜，正在覆土绿化。"]}),
            ("2026-06-20", "lead", "submit", {"text": "整改任务全部完成：渗滤液稳定达标，存量清零，"
                                                      "填埋场完成生态封场。"}),
            ("2026-06-26", "xiangtan_duban", "pre_verify", {
                "opinion": "市级初验合格，渗滤液在线监测数据连续三个月达标，同意报省验收。"}),
            ("2026-07-03", "sheng_duban", "close", {
                "opinion": "经第三方专业机构现场核查，整改到位，同意销号。", "verifier": PROVINCE_LAB,
                "closure_doc_no": "湘督察办销〔2026〕27号", "files": [("document", "第三方验收评估报告.pdf")]}),
        ],
    },
    # From the seeds: 001 L240, L603.
    {
        "key": "juanshui", "sup": "xiangtan_duban", "lead": "xiangtanxian_zhengfu",
        "channel": CJ, "round": "2019年", "kind": "披露问题", "code": "CJ2019-XT-03", "region": "湘潭县",
        "category": "水", "problem_title": "2019年长江经济带生态环境警示片披露湘潭市问题",
        "title": "涓水易俗河镇段生活污水直排",
        "description": "警示片披露：涓水易俗河镇段多个排口生活污水直排，入河断面水质超标，河道淤积发黑。",
        "responsible_leader": "湘潭县人民政府县长", "contact": "湘潭县水利局 易平 0731-57820003",
        "plan": {
            "target": "涓水沿线直排口全部截污纳管，入河断面水质稳定达到Ⅲ类。",
            "measures": "1.排口溯源，实施截污纳管；2.河道清淤和生态护坡；"
                        "3.建设生态缓冲带；4.排口常态化巡查。",
            "milestones": [("2025-10-31", "完成涓水沿线直排口截污纳管", 60),
                           ("2026-06-30", "完成河道清淤和生态护坡", 90)],
        },
        "steps": [
            ("2025-04-10", "sup", "register"),
            ("2025-04-10", "sup", "assign", {"leads": ["湘潭县人民政府"],
                                             "participants": ["湘潭市水利局", "湘潭市生态环境局"],
                                             "deadline": ("2026-10-31", MONTH_END)}),
            ("2025-04-15", "lead", "sign"),
            ("2025-05-07", "lead", "submit_plan"),
            ("2025-05-12", "sup", "approve_plan"),
            ("2025-05-26", "lead", "monthly", {
                "until": "2026-02-25", "from": 10, "to": 95, "met": {"2025-10": [0]},
                "texts": ["完成23个排口溯源，制定“一口一策”。", "截污管网施工完成18个排口。",
                          "全部排口完成截污纳管，河道清淤进场施工。"]}),
            ("2026-03-20", "lead", "submit", {"text": "直排口全部完成截污，晴天无污水入河，申请销号。"}),
            # 退回整改: the first 申请销号 fails the city's 初验 site check.
            ("2026-04-02", "sup", "return", {"reason": "经市级现场核查，雨天易俗河镇段仍有两处排口溢流，"
                                                      "入河断面化学需氧量超标，不符合销号条件，退回继续整改。"}),
            ("2026-04-27", "lead", "monthly", {
                "until": "2026-09-25", "from": 80, "to": 98, "met": {"2026-06": [1]},
                "texts": ["两处溢流排口增设截流井和调蓄池。", "河道清淤和生态护坡完工，雨天溢流问题已解决。"]}),
            ("2026-10-28", "lead", "submit", {
                "text": "溢流排口整改完成，汛期连续监测入河断面水质达标，再次申请销号。",
                # 表面整改 for the verifier to catch: the "after" photo is the first application's "before".
                "files": [("after", "整改后排口照片.png", ("juanshui", "before", "整改前现场照片.png")),
                          ("monitoring", "涓水入河断面水质监测报告.pdf")]}),
        ],
    },
    # From the seeds: 001 L240.
    {
        "key": "pige", "sup": "xiangtan_duban", "lead": "xiangxiang_zhengfu",
        "channel": CJ, "round": "2020年", "kind": "披露问题", "code": "CJ2020-XT-01", "region": "湘乡市",
        "category": "水", "problem_title": "2020年长江经济带生态环境警示片披露湘潭市问题",
        "title": "湘乡皮革工业园污水处理厂超标排放",
        "description": "警示片披露：湘乡皮革工业园污水处理厂长期超负荷运行，总铬、氨氮超标排放，园区管网雨污混流。",
        "responsible_leader": "湘乡市人民政府市长", "contact": "湘乡经开区 贺勇 0731-56780101",
        "plan": {
            "target": "园区污水处理厂提标改造完成，废水稳定达标排放，园区实现雨污分流。",
            "measures": "1.污水处理厂提标扩容；2.园区雨污分流管网改造；3.制革企业含铬废水单独预处理；4.加强执法监测。",
            "milestones": [("2025-06-30", "园区污水处理厂提标改造主体完工", 40),
                           ("2025-09-30", "完成园区雨污分流管网改造", 70),
                           ("2025-12-31", "园区废水稳定达标排放", 100)],
        },
        "steps": [
            ("2025-04-10", "sup", "register"),
            ("2025-04-10", "sup", "assign", {"leads": ["湘乡市人民政府"], "participants": ["湘潭市生态环境局"],
                                             "deadline": ("2025-12-31", YEAR_END)}),
            ("2025-04-16", "lead", "sign"),
            ("2025-05-09", "lead", "submit_plan"),
            ("2025-05-15", "sup", "approve_plan"),
            ("2025-05-26", "lead", "monthly", {
                "until": "2026-10-25", "from": 10, "to": 78, "met": {"2025-08": [0], "2026-04": [1]},
                "texts": ["提标改造工程招标完成。", "提标改造主体完工，进入调试。",
                          "雨污分流管网改造因征拆受阻，进度滞后。",
                          "管网改造完成，含铬废水预处理设施建设中。", "出水总铬已稳定达标，氨氮仍偶有超标。"]}),
            ("2025-10-28", "xiangtan_sthj", "report", {
                "text": "市生态环境局对园区14家制革企业开展执法检查，对2家超标排放企业立案查处，督促落实停产整治。",
                "files": [("monitoring", "园区企业废水监督性监测报告.pdf")]}),
            ("2026-03-16", "sup", "edit", {
                "accountability": "整改进度严重滞后，市突改办已约谈湘乡市人民政府分管负责人并通报。"}),
        ],
    },
    # From the seeds: 001 L240, L237 (返黑返臭: closed, then reopened).
    {
        "key": "heichou_yuhu", "sup": "xiangtan_duban", "lead": "yuhu_zhengfu",
        "channel": SD, "round": "第一轮", "kind": "反馈问题", "code": "SD1-XT-12", "region": "雨湖区",
        "category": "水", "problem_title": "省级生态环境保护督察反馈湘潭市城市黑臭水体治理问题",
        "title": "雨湖区建成区黑臭水体整治不彻底",
        "description": "省级生态环保督察反馈：雨湖区建成区黑臭水体沿线仍有排口污水直排，底泥未清理，"
                       "水体感官差。",
        "responsible_leader": "雨湖区人民政府分管副区长", "contact": "雨湖区住建局 邓勇 0731-58110012",
        "plan": {
            "target": "消除黑臭，水体透明度、溶解氧、氨氮等指标稳定达标，长治久清。",
            "measures": "1.排口溯源截污；2.底泥清淤；3.水体生态修复；4.建立河长巡查和水质监测机制。",
            "milestones": [("2025-07-31", "完成沿线排口溯源和截污管网建设", 60),
                           ("2025-09-30", "完成底泥清淤和水体生态修复", 90)],
        },
        "steps": [
            ("2025-04-18", "sup", "register"),
            ("2025-04-18", "sup", "assign", {"leads": ["雨湖区人民政府"], "participants": ["湘潭市住房和城乡建设局"],
                                             "deadline": ("2025-10-31", MONTH_END)}),
            ("2025-04-22", "lead", "sign"),
            ("2025-05-09", "lead", "submit_plan"),
            ("2025-05-14", "sup", "approve_plan"),
            ("2025-05-26", "lead", "monthly", {
                "until": "2025-09-25", "from": 20, "to": 95, "met": {"2025-07": [0], "2025-09": [1]},
                "first_files": [("before", "整改前水体照片.png")],
                "texts": ["排口溯源完成，截污管网开工。", "截污完成，清淤施工中。", "生态修复完成，水质监测达标。"]}),
            ("2025-10-20", "lead", "submit", {"text": "黑臭水体整治完成，连续两个月水质监测达标。"}),
            ("2025-11-05", "sup", "close", {"opinion": "经现场核查和水质监测，已消除黑臭，同意销号。",
                                            "verifier": XIANGTAN_LAB, "closure_doc_no": "潭突改销〔2025〕18号"}),
            # Closed the year before; the water turns black again in the flood season.
            ("2026-06-15", "sup", "reopen", {"reason": "汛期群众反映水体返黑返臭，经监测氨氮、"
                                                       "溶解氧不达标，重新整改。",
                                             "deadline": ("2026-12-31", YEAR_END)}),
            ("2026-06-25", "lead", "monthly", {
                "until": "2026-10-25", "from": 30, "to": 70,
                "texts": ["排查发现上游两处雨污混接点，正在改接。", "混接点改接完成，补充实施生态补水。"]}),
        ],
    },
    {
        "key": "heichou_yuetang", "sup": "xiangtan_duban", "lead": "yuetang_zhengfu",
        "channel": "专项排查", "round": "2026年", "kind": "其他", "code": "ZX-XT-05", "region": "岳塘区",
        "category": "水", "title": "岳塘区建成区黑臭水体返黑返臭风险排查整治",
        "description": "对照雨湖区黑臭水体返黑返臭问题举一反三，排查发现岳塘区两处已整治水体存在雨污混接，"
                       "汛期有返黑风险。",
        "responsible_leader": "岳塘区人民政府分管副区长", "contact": "岳塘区住建局 刘畅 0731-58550005",
        "plan": {
            "target": "消除雨污混接，已整治水体汛期不返黑返臭。",
            "measures": "1.管网混接点排查改接；2.增设截流调蓄设施；3.汛期加密水质监测。",
            "milestones": [("2026-12-15", "完成混接点改接和调蓄设施建设", 90)],
        },
        "steps": [
            ("2026-06-18", "sup", "register"),
            ("2026-06-18", "sup", "link", {"other": "heichou_yuhu", "note": "举一反三：对照雨湖区返黑返臭问题排查"}),
            ("2026-06-18", "sup", "assign", {"leads": ["岳塘区人民政府"], "participants": ["湘潭市住房和城乡建设局"],
                                             "deadline": ("2026-12-31", YEAR_END)}),
            ("2026-06-24", "lead", "sign"),
            ("2026-10-28", "lead", "submit_plan"),
        ],
    },
    # From the seeds: 001 L240.
    {
        "key": "tiehejin", "sup": "xiangtan_duban", "lead": "yuetang_zhengfu",
        "channel": SD, "round": "第一轮“回头看”", "kind": "反馈问题", "code": "SD1H-XT-07", "region": "岳塘区",
        "category": "固废", "title": "原铁合金渣场历史遗留废渣未有效管控",
        "description": "省级生态环保督察“回头看”反馈：原铁合金厂渣场堆存含铬废渣，防渗和截排水设施缺失，"
                       "雨季渗滤液外渗。",
        "responsible_leader": "岳塘区人民政府区长", "contact": "岳塘区生态环境分局 周敏 0731-58550031",
        "plan": {
            "target": "渣场危险废物全部安全处置，渣场及周边土壤、地下水风险得到管控。",
            "measures": "1.开展渣场及周边土壤、地下水污染状况调查；2.含铬废渣鉴别后交有资质单位处置；3.实施阻隔、"
                        "截排水和覆绿；"
                        "4.建设地下水监测井，长期监测。",
            "milestones": [("2025-10-31", "完成渣场及周边土壤、地下水污染状况调查", 30),
                           ("2026-01-31", "完成含铬废渣转移处置", 70),
                           ("2026-03-31", "完成渣场风险管控工程和生态修复", 100)],
        },
        "steps": [
            ("2025-05-09", "sup", "register"),
            ("2025-05-09", "sup", "assign", {"leads": ["岳塘区人民政府"],
                                             "participants": ["湘潭市生态环境局", "湘潭市自然资源和规划局"],
                                             "deadline": ("2026-03-31", MONTH_END)}),
            ("2025-05-14", "lead", "sign"),
            # 严把整改方案关 (001 L654): a superficial first plan is returned.
            ("2025-06-03", "lead", "submit_plan", {"measures": "对渣场进行覆土绿化。", "milestones": []}),
            ("2025-06-09", "sup", "return_plan", {
                "reason": "方案未包括废渣处置和周边地下水风险管控，仅覆土绿化属表面整改，请补充。"}),
            ("2025-06-20", "lead", "submit_plan"),
            ("2025-06-25", "sup", "approve_plan"),
            ("2025-07-25", "lead", "monthly", {
                "until": "2026-10-25", "from": 10, "to": 80, "met": {"2025-11": [0], "2026-05": [1]},
                "texts": ["调查单位进场布点采样。", "调查报告通过评审，废渣鉴别为危险废物。",
                          "废渣转移受处置单位接收能力限制，进度滞后。", "废渣转移处置完成，风险管控工程开工。"]}),
        ],
    },
    # From the seeds: 001 L239, L611.
    {
        "key": "zhubugang", "sup": "xiangtan_duban", "lead": "xiangtan_sthj",
        "channel": ZY, "round": "第一轮“回头看”", "kind": "反馈问题", "code": "ZY1H-XT-04", "region": "岳塘区",
        "category": "土壤", "title": "竹埠港老工业区遗留污染地块治理修复",
        "description": "竹埠港老工业区化工企业退出后遗留污染地块，竹埠片区、"
                       "双埠片区土壤污染管控与修复尚未完成。",
        "responsible_leader": "湘潭市生态环境局局长", "contact": "市生态环境局 刘海波 0731-58220004",
        "plan": {
            "target": "竹埠片区污染土壤修复、双埠片区风险管控完成并通过效果评估，满足规划用地要求。",
            "measures": "1.分区实施修复和风险管控；2.全过程环境监理；3.修复效果评估；"
                        "4.地块纳入建设用地土壤污染风险管控和修复名录动态管理。",
            "milestones": [("2025-12-31", "竹埠片区完成污染土壤修复", 40),
                           ("2026-06-30", "双埠片区完成风险管控工程", 75),
                           ("2026-12-31", "全部地块通过效果评估", 100)],
        },
        "steps": [
            ("2025-04-24", "sup", "register"),
            ("2025-04-24", "sup", "assign", {"leads": ["湘潭市生态环境局"],
                                             "participants": ["岳塘区人民政府", "湘潭市自然资源和规划局"],
                                             "deadline": ("2026-12-31", YEAR_END)}),
            ("2025-04-28", "lead", "sign"),
            ("2025-05-20", "lead", "submit_plan"),
            ("2025-05-26", "sup", "approve_plan"),
            ("2025-06-25", "lead", "monthly", {
                "until": "2026-10-25", "from": 8, "to": 84, "met": {"2025-12": [0], "2026-06": [1]},
                "texts": ["竹埠片区修复工程进场。", "竹埠片区修复完成，开展自检。", "双埠片区阻隔工程施工中。",
                          "双埠片区风险管控完成，效果评估单位进场。"]}),
        ],
    },
    # From the seeds: 001 L619.
    {
        "key": "jinshi_meng", "sup": "xiangtan_duban", "lead": "xiangxiang_zhengfu",
        "channel": ZY, "round": "第一轮", "kind": "反馈问题", "code": "ZY1-XT-09", "region": "金石镇",
        "category": "土壤", "title": "湘乡市金石锰矿历史遗留废渣和矿井涌水污染",
        "description": "湘乡市金石锰矿区遗留锰渣露天堆存，矿井涌水未经处理外排，周边溪沟锰超标。",
        "responsible_leader": "湘乡市人民政府分管副市长", "contact": "湘乡市生态环境分局 谭卫 0731-56780017",
        "plan": {
            "target": "遗留锰渣安全管控，矿井涌水收集处理达标排放，并长期坚持监管。",
            "measures": "1.遗留锰渣清理和安全填埋；2.建设矿井涌水收集处理站；3.溪沟清淤；4.长期监测和巡查。",
            "milestones": [("2025-09-30", "完成遗留锰渣清理和安全填埋", 70)],
        },
        "steps": [
            ("2025-04-25", "sup", "register"),
            ("2025-04-25", "sup", "assign", {"leads": ["湘乡市人民政府"], "participants": ["湘潭市生态环境局"],
                                             "deadline": ("2025-12-31", LONG_AFTER, "date_and_long_term")}),
            ("2025-04-29", "lead", "sign"),
            ("2025-05-21", "lead", "submit_plan"),
            ("2025-05-27", "sup", "approve_plan"),
            ("2025-06-25", "lead", "monthly", {
                "until": "2025-11-25", "from": 30, "to": 95, "met": {"2025-09": [0]},
                "texts": ["锰渣清运至安全填埋场。", "涌水处理站建成调试。", "出水锰浓度稳定达标。"]}),
            ("2025-12-10", "lead", "submit", {
                "text": "遗留锰渣清理完毕，矿井涌水处理站稳定运行，出水达标，已建立长期监测制度。",
                "files": [("after", "整改后矿区照片.png"), ("monitoring", "矿井涌水处理出水监测报告.pdf")]}),
            ("2025-12-19", "xiangtan_duban", "pre_verify", {"opinion": "市级初验合格，同意报省验收。"}),
            ("2026-01-15", "sheng_duban", "close", {
                "opinion": "整改到位，同意销号，后续纳入长期监管。", "verifier": PROVINCE_LAB,
                "closure_doc_no": "湘督察办销〔2026〕5号"}),
        ],
    },
    # From the seeds: 001 L236, L583.
    {
        "key": "xianggang", "sup": "xiangtan_duban", "lead": "xianggang",
        "channel": GJ, "round": "2025年", "kind": "其他", "code": "GJ-XT-03", "region": "岳塘区",
        "category": "大气", "title": "湘钢集团超低排放改造未全部完成",
        "description": "湘钢集团超低排放改造未全部完成，"
                       "烧结机头烟气和原料场无组织排放尚未达到超低排放要求。",
        "responsible_leader": "湘潭钢铁集团有限公司总经理", "contact": "湘钢能源环保部 邓建军 0731-58660003",
        "plan": {
            "target": "全流程完成超低排放改造并通过评估监测。",
            "measures": "1.烧结机头烟气脱硫脱硝改造；2.焦炉和原料场全封闭；3.清洁运输改造；4.超低排放评估监测。",
            "milestones": [("2025-10-31", "完成烧结机头烟气超低排放改造", 40),
                           ("2026-03-31", "完成焦炉及原料场无组织排放治理", 80)],
        },
        "steps": [
            ("2025-04-22", "sup", "register"),
            ("2025-04-22", "sup", "assign", {"leads": ["湘潭钢铁集团有限公司"], "participants": ["湘潭市生态环境局"],
                                             "deadline": ("2026-06-30", MONTH_END)}),
            ("2025-04-25", "lead", "sign"),
            ("2025-05-15", "lead", "submit_plan"),
            ("2025-05-20", "sup", "approve_plan"),
            ("2025-05-26", "lead", "monthly", {
                "until": "2026-05-25", "from": 10, "to": 95, "met": {"2025-10": [0], "2026-03": [1]},
                "texts": ["烧结机头脱硫脱硝设施施工。", "烧结机改造完成，"
                                                        "排放浓度达到超低限值。", "原料场全封闭大棚施工。",
                          "无组织排放治理完成，评估监测单位进场。"]}),
            ("2026-06-12", "lead", "submit", {
                "text": "超低排放改造全部完成，评估监测结果达标。",
                "files": [("after", "原料场封闭后照片.png"), ("monitoring", "超低排放评估监测报告.pdf")]}),
            ("2026-06-29", "sup", "close", {"opinion": "评估监测达标，同意销号。", "verifier": XIANGTAN_LAB,
                                            "closure_doc_no": "潭突改销〔2026〕9号"}),
        ],
    },
    # From the seeds: 001 L584.
    {
        "key": "shaofeng", "sup": "xiangtan_duban", "lead": None,
        "channel": GJ, "round": "2026年", "kind": "其他", "code": "GJ-XT-11", "region": "湘乡市",
        "category": "大气", "title": "韶峰南方水泥超低排放改造",
        "description": "韶峰南方水泥采取低氮改造、精准喷氨方式实施超低排放改造，"
                       "氮氧化物排放浓度须控制在100mg/m³以内。",
        "steps": [
            ("2026-10-30", "sup", "register"),
            ("2026-10-30", "sup", "assign", {"leads": ["湖南韶峰南方水泥有限公司"], "participants": ["湘乡市人民政府"],
                                             "deadline": ("2027-06-30", MONTH_END)}),
        ],
    },
    # From the seeds: 001 L572.
    {
        "key": "zhuanwa", "sup": "yuhu_duban", "lead": None,
        "channel": "12369环保举报热线", "round": "2026年", "kind": "其他", "region": "雨湖区", "category": "大气",
        "title": "鹤岭镇烧结砖厂夜间生产烟尘扰民",
        "description": "群众通过12369热线反映：雨湖区鹤岭镇一烧结砖厂夜间生产，烟尘较大。",
        "steps": [("2026-11-12", "sup", "register")],
    },
    # Complaints waiting for 交办, so a supervisor can try 批量交办 on the demo (001: 餐饮油烟, 噪声扰民, 砂石码头).
    {
        "key": "youyan", "sup": "yuhu_duban", "lead": None,
        "channel": "12369环保举报热线", "round": "2026年", "kind": "其他", "region": "雨湖区", "category": "大气",
        "title": "雨湖区步步高广场周边餐饮油烟直排",
        "description": "群众通过12369热线反映：步步高广场周边多家餐饮店未安装油烟净化设施，油烟直排扰民。",
        "steps": [("2026-11-16", "sup", "register")],
    },
    {
        "key": "zaosheng", "sup": "yuhu_duban", "lead": None,
        "channel": "12369环保举报热线", "round": "2026年", "kind": "其他", "region": "雨湖区", "category": "噪声",
        "title": "鹤岭镇混凝土搅拌站夜间施工噪声扰民",
        "description": "群众通过12369热线反映：鹤岭镇一混凝土搅拌站夜间作业，噪声超标扰民。",
        "steps": [("2026-11-17", "sup", "register")],
    },
    {
        "key": "shashi", "sup": "yuhu_duban", "lead": None,
        "channel": "12369环保举报热线", "round": "2026年", "kind": "其他", "region": "雨湖区", "category": "水",
        "title": "湘江雨湖段砂石堆场扬尘及雨水冲刷入江",
        "description": "群众通过12369热线反映：湘江雨湖段一砂石堆场未覆盖，扬尘大，雨天泥水直接冲刷入江。",
        "steps": [("2026-11-18", "sup", "register")],
    },
    {
        "key": "xinfang_wushui", "sup": "yuhu_duban", "lead": "yuhu_sthj",
        "channel": XF, "round": "2026年", "kind": "交办信访件", "code": "XF-YH-0318", "region": "雨湖区",
        "category": "水", "title": "雨湖区某小区南侧排水沟生活污水直排",
        "description": "信访人反映小区南侧排水沟长期有生活污水直排，夏季臭味大。",
        "complainant": {"name": "王某某", "phone": "13873200318", "address": "湘潭市雨湖区某小区",
                        "content": "小区南侧排水沟长期有生活污水直排，夏季臭味大，希望尽快整治。"},
        "plan": {"target": "消除生活污水直排，排水沟无异味。",
                 "measures": "1.排水沟清淤；2.错接点改接；3.管网连通至市政污水管网。"},
        "steps": [
            ("2026-03-09", "sup", "register"),
            ("2026-03-09", "sup", "assign", {"leads": ["湘潭市生态环境局雨湖分局"], "participants": ["雨湖区人民政府"],
                                             "deadline": ("2026-04-30", BY_DAY)}),
            ("2026-03-10", "lead", "sign"),
            ("2026-03-12", "lead", "submit_plan"),
            ("2026-03-13", "sup", "approve_plan"),
            ("2026-03-27", "lead", "report", {"text": "已完成排水沟清淤，3处生活污水错接点完成改接，正在实施管网连通。",
                                             "percent": 60, "files": [("before", "整改前排水沟照片.png")]}),
            ("2026-04-16", "lead", "submit", {"text": "错接点全部改接，管网已连通，排水沟无污水直排，"
                                                      "已电话回访信访人。"}),
            ("2026-04-24", "sup", "close", {"opinion": "经现场核查并回访信访人，整改到位，信访人满意。",
                                            "closure_doc_no": "雨突改销〔2026〕12号"}),
        ],
    },
    {
        "key": "xinfang_chongfu", "sup": "yuhu_duban", "lead": None,
        "channel": XF, "round": "2026年", "kind": "交办信访件", "region": "雨湖区", "category": "水",
        "title": "小区旁排水沟污水横流（12345转办）",
        "description": "12345热线转办：反映小区旁排水沟污水横流、臭味大。",
        "complainant": {"name": "王某某", "phone": "13873200318", "address": "湘潭市雨湖区某小区",
                        "content": "排水沟污水横流，之前反映过，希望尽快处理。"},
        "steps": [
            ("2026-03-11", "sup", "register"),
            # A duplicate 信访件 merged into the one already being handled.
            ("2026-03-12", "sup", "merge", {"merge_into": "xinfang_wushui",
                                            "reason": "与3月9日交办的信访件系同一信访人反映同一问题，合并办理。"}),
        ],
    },
    {
        "key": "xinfang_yangzhi", "sup": "xiangtan_duban", "lead": "xiangtanxian_zhengfu",
        "channel": XF, "round": "2026年", "kind": "交办信访件", "code": "XF-XT-0512", "region": "湘潭县",
        "category": "水", "title": "湘潭县某村养殖场废水排入池塘",
        "description": "信访人反映村里一处生猪养殖场粪污废水排入池塘，臭气扰民。",
        "complainant": {"name": "匿名", "phone": "", "address": "湘潭县某村", "content": "养猪场废水排到塘里，很臭。"},
        "steps": [
            ("2026-05-11", "sup", "register"),
            ("2026-05-11", "sup", "assign", {"leads": ["湘潭县人民政府"], "deadline": ("2026-06-10", BY_DAY)}),
            ("2026-05-13", "lead", "sign"),
            # 作废 after 签收: the complaint turns out unfounded.
            ("2026-05-20", "sup", "cancel", {"reason": "经湘潭县现场核查，反映的养殖场已依法关闭拆除，池塘水质正常，"
                                                      "问题不属实，经市突改办审核予以作废。"}),
        ],
    },
    {
        "key": "anxian_duichang", "sup": "xiangtan_duban", "lead": "yuhu_zhengfu",
        "channel": "专项排查", "round": "2026年", "kind": "其他", "code": "ZX-XT-09", "region": "湘潭市",
        "category": "生态", "title": "湘江鹤岭段岸线非法砂石堆场",
        "description": "长江岸线专项排查发现湘江鹤岭段岸线有一处非法砂石堆场，占用岸线约2000平方米。",
        "plan": {"target": "堆场全部清理，岸线恢复原状并复绿。",
                 "measures": "1.依法取缔堆场；2.清运砂石；3.岸线复绿；4.纳入河长巡查。",
                 "milestones": [("2026-10-31", "完成堆场取缔和砂石清运", 60)]},
        "steps": [
            ("2026-08-03", "sup", "register"),
            ("2026-08-03", "sup", "assign", {"leads": ["湘潭县人民政府"], "deadline": ("2026-12-31", YEAR_END)}),
            # 退办: handed to the wrong county, handed back, then handed to the right one.
            ("2026-08-05", "xiangtanxian_zhengfu", "decline", {
                "reason": "经现场核实，该堆场位于雨湖区鹤岭镇，不属我县管辖，申请退办。"}),
            ("2026-08-06", "sup", "assign", {"leads": ["雨湖区人民政府"],
                                             "participants": ["湘潭市水利局", "湘潭市自然资源和规划局"],
                                             "deadline": ("2026-12-31", YEAR_END)}),
            ("2026-08-10", "lead", "sign"),
            ("2026-08-24", "lead", "submit_plan"),
            ("2026-08-27", "sup", "approve_plan"),
            ("2026-09-25", "lead", "monthly", {
                "until": "2026-10-25", "from": 30, "to": 65, "met": {"2026-10": [0]},
                "texts": ["堆场已取缔，砂石清运中。", "砂石清运完毕，复绿苗木采购中。"]}),
        ],
    },
    # From the seeds: 001 L237.
    {
        "key": "shaoshan_guanwang", "sup": "xiangtan_duban", "lead": "xiangtan_zhujian",
        "channel": SD, "round": "第二轮", "kind": "反馈问题", "code": "SD2-XT-15", "region": "韶山市",
        "category": "水", "title": "韶山市城区污水管网雨污混排、污水直排",
        "description": "省级生态环保督察反馈：韶山市城区管网存在未接、错接、漏接，雨污混排，部分污水直排。",
        "plan": {
            "target": "城区基本消除污水直排，污水集中收集率明显提高。",
            "measures": "1.管网混错接排查；2.老城区雨污分流改造；3.管网清淤修复；4.建立排水管网长效管护机制。",
            "milestones": [("2025-12-31", "完成城区管网混错接点排查", 30),
                           ("2026-06-30", "完成老城区雨污分流改造一期", 60),
                           ("2026-12-31", "完成二期改造，城区基本消除污水直排", 100)],
        },
        "steps": [
            ("2025-05-12", "sup", "register"),
            ("2025-05-12", "sup", "assign", {"leads": ["湘潭市生态环境局"], "participants": ["韶山市人民政府"],
                                             "deadline": ("2026-12-31", YEAR_END)}),
            ("2025-05-15", "xiangtan_sthj", "sign"),
            # 改派 after 签收: the bureau that signed is not the one responsible.
            ("2025-06-03", "sup", "reassign", {"leads": ["湘潭市住房和城乡建设局"],
                                               "participants": ["韶山市人民政府", "湘潭市生态环境局"],
                                               "reason": "城镇污水管网建设改造属住房城乡建设部门职责，"
                                                         "改由市住房和城乡建设局牵头。"}),
            ("2025-06-05", "lead", "sign"),
            ("2025-06-20", "lead", "submit_plan"),
            ("2025-06-25", "sup", "approve_plan"),
            ("2025-07-25", "lead", "monthly", {
                "until": "2026-10-25", "from": 10, "to": 80, "met": {"2025-12": [0], "2026-07": [1]},
                "texts": ["管网混错接排查进行中。", "排查完成，"
                                                    "发现混错接点86处。", "一期雨污分流改造施工。", "二期改造开工。"]}),
        ],
    },
    # From the seeds: 004 L210, L424.
    {
        "key": "qst_canzha", "sup": "zhuzhou_duban", "lead": "shifeng_zhengfu",
        "channel": ZY, "round": "第一轮“回头看”", "kind": "反馈问题", "code": "ZY1H-ZZ-06", "region": "石峰区",
        "category": "固废", "problem_title": "清水塘老工业区环境治理修复",
        "title": "清水塘关闭企业遗留残渣废液安全处置",
        "description": "清水塘老工业区关闭企业剩余遗留残渣废液未安全处置，区域内零散堆存历史遗留废渣，"
                       "存在环境安全隐患。",
        "responsible_leader": "石峰区人民政府区长", "contact": "石峰区生态环境分局 何军 0731-28110006",
        "plan": {
            "target": "遗留残渣废液全部安全处置，零散废渣清查建档并清运。",
            "measures": "1.清查建档；2.危险废物交有资质单位处置；3.一般固废规范清运；4.场地环境监测。",
            "milestones": [("2025-08-31", "完成区域内零散堆存历史遗留废渣清查建档", 50)],
        },
        "steps": [
            ("2025-04-15", "sup", "register"),
            ("2025-04-15", "sup", "assign", {"leads": ["石峰区人民政府"], "participants": ["株洲市生态环境局"],
                                             "deadline": ("2025-12-31", YEAR_END)}),
            ("2025-04-18", "lead", "sign"),
            ("2025-05-08", "lead", "submit_plan"),
            ("2025-05-13", "sup", "approve_plan"),
            ("2025-05-26", "lead", "monthly", {
                "until": "2025-10-25", "from": 30, "to": 95, "met": {"2025-08": [0]},
                "texts": ["清查发现零散堆存点17处。", "清查建档完成，危险废物转移处置中。", "残渣废液全部处置完毕。"]}),
            ("2025-11-20", "lead", "submit", {"text": "遗留残渣废液全部安全处置，零散废渣清运完毕。"}),
            ("2025-11-28", "zhuzhou_duban", "pre_verify", {"opinion": "市级初验合格，同意报省验收。"}),
            ("2025-12-10", "sheng_duban", "close", {
                "opinion": "经第三方核查，整改到位，同意销号。", "verifier": PROVINCE_LAB,
                "closure_doc_no": "湘督察办销〔2025〕41号"}),
        ],
    },
    # From the seeds: 004 L210, L424.
    {
        "key": "qst_changwai", "sup": "zhuzhou_duban", "lead": "shifeng_zhengfu",
        "channel": ZY, "round": "第二轮", "kind": "反馈问题", "code": "ZY2-ZZ-02", "region": "石峰区",
        "category": "土壤", "title": "清水塘工业区厂外3932亩受污染土地治理修复",
        "description": "清水塘工业区厂外受污染土地治理修复任务重，须完成3932亩治理修复，"
                       "达到规划用地环境质量。",
        "responsible_leader": "石峰区人民政府区长", "contact": "石峰区生态环境分局 何军 0731-28110006",
        "plan": {
            "target": "厂外3932亩受污染土地全部完成治理修复并通过效果评估。",
            "measures": "1.分片区实施修复；2.“环境修复+开发建设”模式推进；3.全过程监理；4.效果评估。",
            "milestones": [("2025-09-30", "累计完成厂外受污染土地修复1200亩", 30),
                           ("2026-03-31", "累计完成2500亩", 60),
                           ("2026-09-30", "累计完成3500亩", 85),
                           ("2026-12-31", "3932亩全部完成并通过效果评估", 100)],
        },
        "steps": [
            ("2025-04-15", "sup", "register"),
            ("2025-04-15", "sup", "assign", {"leads": ["石峰区人民政府"],
                                             "participants": ["株洲市自然资源和规划局", "株洲市生态环境局"],
                                             "deadline": ("2026-12-31", YEAR_END)}),
            ("2025-04-18", "lead", "sign"),
            ("2025-05-09", "lead", "submit_plan"),
            ("2025-05-14", "sup", "approve_plan"),
            ("2025-05-26", "lead", "monthly", {
                "until": "2026-10-25", "from": 8, "to": 88, "met": {"2025-09": [0], "2026-03": [1], "2026-09": [2]},
                "texts": ["霞湾片区修复工程施工。", "累计完成修复1200亩。", "累计完成修复2500亩。",
                          "累计完成修复3500亩，效果评估准备中。"]}),
        ],
    },
    # From the seeds: 004 L424.
    {
        "key": "qst_qiye", "sup": "zhuzhou_duban", "lead": "shifeng_zhengfu",
        "channel": SD, "round": "第二轮", "kind": "反馈问题", "code": "SD2-ZZ-04", "region": "石峰区",
        "category": "土壤", "title": "清水塘4700亩受污染企业地块修复与风险管控滞后",
        "description": "清水塘4700亩受污染企业地块修复与风险管控进度滞后，部分地块未开展风险管控即拟开发。",
        "plan": {
            "target": "4700亩企业地块完成修复或风险管控，保证土地再开发利用安全。",
            "measures": "1.地块风险分级；2.高风险地块优先修复；3.未修复地块禁止开发；4.结合开发建设有序推进。",
            "milestones": [("2025-08-31", "完成4700亩企业地块风险分级和管控方案", 30),
                           ("2025-12-31", "完成高风险地块修复与风险管控工程", 100)],
        },
        "steps": [
            ("2025-04-21", "sup", "register"),
            ("2025-04-21", "sup", "assign", {"leads": ["石峰区人民政府"],
                                             "participants": ["株洲市生态环境局", "株洲市自然资源和规划局"],
                                             "deadline": ("2025-12-31", YEAR_END)}),
            ("2025-04-24", "lead", "sign"),
            ("2025-05-15", "lead", "submit_plan"),
            ("2025-05-20", "sup", "approve_plan"),
            ("2025-05-21", "sup", "link", {
                "other": "qst_changwai", "note": "同属清水塘老工业区污染地块治理，统筹调度、一并核查"}),
            ("2025-05-26", "lead", "monthly", {
                "until": "2026-10-25", "from": 10, "to": 76, "met": {"2025-09": [0]},
                "texts": ["风险分级调查进行中。", "风险分级完成，高风险地块修复招标。", "修复资金缺口较大，进度滞后。",
                          "已争取专项资金，修复工程加快推进。"]}),
        ],
    },
    # From the seeds: 004 L532.
    {
        "key": "tai", "sup": "zhuzhou_duban", "lead": "zhuzhou_sthj",
        "channel": "专项排查", "round": "2025年", "kind": "指出问题", "code": "ZX-ZZ-01", "region": "株洲市",
        "category": "水", "title": "湘江流域涉铊企业排查整治",
        "description": "湘江流域铊污染整治专项行动发现部分涉铊企业废水处理设施不完善，需全面排查整治。",
        "plan": {"target": "涉铊企业全部完成排查整治，外排废水铊浓度稳定达标。",
                 "measures": "1.建立涉铊企业清单；2.一企一策整治；3.加密监督性监测。"},
        "steps": [
            ("2025-05-06", "sup", "register"),
            ("2025-05-06", "sup", "assign", {"leads": ["株洲市生态环境局"], "participants": ["株洲市水利局"],
                                             "deadline": ("2025-10-31", MONTH_END)}),
            ("2025-05-08", "lead", "sign"),
            ("2025-05-20", "lead", "submit_plan"),
            ("2025-05-22", "sup", "approve_plan"),
            ("2025-06-25", "lead", "monthly", {
                "until": "2025-09-25", "from": 30, "to": 95,
                "texts": ["涉铊企业清单建立，共9家。", "一企一策整治完成7家。", "全部企业整治完成，监测达标。"]}),
            ("2025-10-15", "lead", "submit", {"text": "9家涉铊企业全部完成整治，监督性监测达标。",
                                             "files": [("monitoring", "涉铊企业废水监测报告.pdf")]}),
            ("2025-10-24", "sup", "close", {"opinion": "同意销号。", "closure_doc_no": "株突改销〔2025〕22号"}),
        ],
    },
    # From the seeds: 004 L614.
    {
        "key": "jiubujiang", "sup": "zhuzhou_duban", "lead": "youxian_zhengfu",
        "channel": "绿盾专项行动", "round": "2026年", "kind": "指出问题", "code": "LD-ZZ-03", "region": "攸县",
        "category": "生态", "title": "攸县酒埠江国家湿地公园内违规建设",
        "description": "“绿盾”自然保护地强化监督发现攸县酒埠江国家湿地公园保育区内有违规建设的餐饮设施。",
        "steps": [
            ("2026-10-20", "sup", "register"),
            ("2026-10-20", "sup", "assign", {"leads": ["攸县人民政府"], "participants": ["株洲市林业局"],
                                             "deadline": ("2027-03-31", MONTH_END)}),
            ("2026-10-23", "lead", "sign"),
        ],
    },
    {
        "key": "lushui", "sup": "zhuzhou_duban", "lead": None,
        "channel": "省级河湖长巡查", "round": "2026年", "kind": "指出问题", "code": "HH-ZZ-08", "region": "醴陵市",
        "category": "水", "title": "渌水醴陵段河道违规堆砂",
        "description": "省级河湖长巡查发现渌水醴陵段河道管理范围内有违规堆砂点，影响行洪。",
        "steps": [
            ("2026-10-26", "sup", "register"),
            ("2026-10-26", "sup", "assign", {"leads": ["醴陵市人民政府"], "participants": ["株洲市水利局"],
                                             "deadline": ("2026-12-31", YEAR_END)}),
        ],
    },
    # From the seeds: 002 L115.
    {
        "key": "nanyao", "sup": "yueyang_duban", "lead": "pingjiang_zhengfu",
        "channel": SD, "round": "第二轮", "kind": "反馈问题", "code": "SD2-YY-21", "region": "三阳乡",
        "category": "土壤", "title": "三阳乡南尧村历史遗留无主重金属尾砂",
        "description": "三阳南尧村历史遗留无主重金属尾砂露天堆存，雨季冲刷进入周边农田和溪沟。",
        "responsible_leader": "平江县人民政府分管副县长", "contact": "平江生态环境分局 吴德胜 0730-6220021",
        "plan": {
            "target": "尾砂全部清运安全处置，周边农田和溪沟风险得到管控。",
            "measures": "1.尾砂堆存量和污染范围调查；2.尾砂清运安全处置；3.周边农田安全利用；4.长期监测。",
            "milestones": [("2025-12-31", "完成尾砂堆存量和污染范围调查，确定治理方案", 30),
                           ("2026-06-30", "完成尾砂清运和安全处置", 100)],
        },
        "steps": [
            ("2025-05-19", "sup", "register"),
            ("2025-05-19", "sup", "assign", {"leads": ["平江县人民政府"], "participants": ["岳阳市生态环境局平江分局"],
                                             "deadline": ("2026-06-30", MONTH_END)}),
            ("2025-05-23", "lead", "sign"),
            ("2025-06-16", "lead", "submit_plan"),
            ("2025-06-20", "sup", "approve_plan"),
            ("2025-07-25", "lead", "monthly", {
                "until": "2026-10-25", "from": 8, "to": 62, "met": {"2026-01": [0]},
                "first_files": [("before", "整改前尾砂堆场照片.png")],
                "texts": ["调查单位进场。", "调查完成，尾砂约3.2万立方米。", "处置场所选址未落实，清运滞后。",
                          "尾砂清运已完成六成。"]}),
        ],
    },
    # From the seeds: 002 L115.
    {
        "key": "jiufengdong", "sup": "yueyang_duban", "lead": "pingjiang_zhengfu",
        "channel": CJ, "round": "2021年", "kind": "披露问题", "code": "CJ2021-YY-04", "region": "浯口镇",
        "category": "固废", "title": "浯口镇九丰洞历史遗留冶炼钒矿废渣",
        "description": "浯口镇九丰洞历史遗留冶炼钒矿废渣长期堆存，渗滤液未收集，周边地表水钒超标。",
        "responsible_leader": "平江县人民政府分管副县长", "contact": "平江生态环境分局 吴德胜 0730-6220021",
        "plan": {
            "target": "废渣阻隔填埋，渗滤液全部收集处理，周边地表水达标。",
            "measures": "1.废渣鉴别和治理工程设计；2.阻隔填埋；3.渗滤液收集处理；4.生态复绿和长期监测。",
            "milestones": [("2025-12-31", "完成钒矿废渣鉴别和治理工程设计", 35),
                           ("2026-06-30", "完成废渣阻隔填埋和渗滤液收集设施建设", 85)],
        },
        "steps": [
            ("2025-05-20", "sup", "register"),
            ("2025-05-20", "sup", "assign", {"leads": ["平江县人民政府"], "participants": ["岳阳市生态环境局平江分局"],
                                             "deadline": ("2026-09-30", MONTH_END)}),
            ("2025-05-21", "sup", "link", {
                "other": "nanyao", "note": "举一反三：同为平江县历史遗留重金属废渣问题，统筹排查"}),
            ("2025-05-26", "lead", "sign"),
            ("2025-06-18", "lead", "submit_plan"),
            ("2025-06-23", "sup", "approve_plan"),
            ("2025-07-28", "lead", "monthly", {
                "until": "2026-08-25", "from": 10, "to": 95, "met": {"2026-01": [0], "2026-06": [1]},
                "texts": ["废渣鉴别采样完成。", "治理工程设计通过评审。", "阻隔填埋工程施工。",
                          "渗滤液收集设施投运，复绿完成。"]}),
            ("2026-09-22", "lead", "submit", {
                "text": "废渣阻隔填埋完成，渗滤液收集处理设施稳定运行，周边地表水钒浓度达标。",
                "files": [("before", "整改前废渣堆场照片.png"), ("after", "整改后复绿照片.png"),
                          ("monitoring", "周边地表水监测报告.pdf")]}),
            ("2026-09-30", "yueyang_duban", "pre_verify", {"opinion": "市级初验合格，同意报省验收。"}),
            ("2026-10-16", "sheng_duban", "close", {
                "opinion": "经第三方核查评估，整改到位，同意销号。", "verifier": PROVINCE_LAB,
                "closure_doc_no": "湘督察办销〔2026〕58号"}),
        ],
    },
    # From the seeds: 000 L55.
    {
        "key": "xiasaihu", "sup": "sheng_duban", "lead": "yiyang_zhengfu",
        "channel": ZY, "round": "第一轮“回头看”", "kind": "典型案例", "code": "ZY1H-HN-01", "region": "益阳市",
        "category": "生态", "title": "洞庭湖区下塞湖矮围整治成果巩固",
        "description": "洞庭湖区下塞湖矮围已拆除，须长期坚持巡查监管，防止非法矮围、网围反弹。",
        "responsible_leader": "益阳市人民政府分管副市长", "contact": "益阳市水利局 蔡继红 0737-4220001",
        "plan": {"target": "下塞湖区域不出现新的矮围、网围，湿地生态持续恢复。",
                 "measures": "1.常态化巡查；2.卫星遥感监测；3.湿地生态修复；4.发现一处、拆除一处。"},
        "steps": [
            ("2025-04-08", "sup", "register"),
            ("2025-04-08", "sup", "assign", {"leads": ["益阳市人民政府"], "participants": ["湖南省水利厅"],
                                             "deadline": (None, "长期坚持", "long_term")}),
            ("2025-04-11", "lead", "sign"),
            ("2025-04-30", "lead", "submit_plan"),
            ("2025-05-08", "sup", "approve_plan"),
            ("2025-06-25", "lead", "monthly", {
                "until": "2026-09-25", "every": 3,
                "texts": ["本季度开展巡查12次，未发现新建矮围。", "遥感监测未发现异常，湿地植被恢复良好。",
                          "汛期加密巡查，清理残留网围2处。"]}),
        ],
    },
    # From the seeds: 000 L55.
    {
        "key": "dani", "sup": "sheng_duban", "lead": "zhangjiajie_zhengfu",
        "channel": ZY, "round": "第一轮“回头看”", "kind": "反馈问题", "code": "ZY1H-HN-02", "region": "张家界市",
        "category": "生态", "title": "张家界大鲵国家级自然保护区小水电清理整改",
        "description": "张家界大鲵国家级自然保护区内小水电未按要求退出，部分电站未落实生态流量。",
        "responsible_leader": "张家界市人民政府分管副市长", "contact": "张家界市水利局 田向阳 0744-8220002",
        "plan": {
            "target": "保护区核心区、缓冲区内小水电全部退出，保留电站生态流量足额泄放。",
            "measures": "1.分类处置退出电站；2.拆除后河道生态修复；3.保留电站安装生态流量泄放和在线监测设施。",
            "milestones": [("2025-12-31", "保护区核心区、缓冲区内小水电全部退出", 60),
                           ("2026-09-30", "完成退出电站拆除后河道生态修复", 90)],
        },
        "steps": [
            ("2025-04-08", "sup", "register"),
            ("2025-04-08", "sup", "assign", {"leads": ["张家界市人民政府"],
                                             "participants": ["湖南省水利厅", "湖南省林业局"],
                                             "deadline": ("2026-12-31", YEAR_END)}),
            ("2025-04-14", "lead", "sign"),
            ("2025-05-06", "lead", "submit_plan"),
            ("2025-05-12", "sup", "approve_plan"),
            ("2025-05-26", "lead", "monthly", {
                "until": "2026-10-25", "from": 15, "to": 88, "met": {"2025-12": [0], "2026-09": [1]},
                "texts": ["退出电站补偿协议签订中。", "核心区电站全部停运拆除。", "缓冲区电站退出完成。",
                          "河道生态修复施工。"]}),
            # A participant unit reports too.
            ("2025-09-18", "sheng_shuili", "report", {
                "text": "省水利厅组织对保护区内保留电站生态流量泄放设施和在线监测开展专项核查，"
                        "8座电站监测数据已接入省级监管平台。"}),
        ],
    },
    # From the seeds: 000 L55, L755 (split into one task per city).
    {
        "key": "lvxin", "sup": "sheng_duban", "lead": None,
        "channel": ZY, "round": "第一轮“回头看”", "kind": "反馈问题", "code": "ZY1H-HN-03", "region": "湖南省",
        "category": "生态", "problem_title": "长株潭“绿心”违规建设问题",
        "title": "长株潭“绿心”违规建设",
        "description": "长株潭生态绿心地区禁止开发区、限制开发区内存在违规建设项目，"
                       "须清理整治并实施生态修复。",
        "target": "绿心地区违规建设项目全部清理整治，生态修复到位。",
        "measures": "三市分别建立违规项目清单，逐项清理整治、生态修复，并纳入绿心保护监管平台。",
        "steps": [
            ("2025-04-08", "sup", "register"),
            # The problem spans three cities, so only the province may split it.
            ("2025-04-09", "sup", "split", {"children": [
                {"key": "lvxin_cs", "region": "长沙市", "title": "长株潭“绿心”违规建设问题整改（长沙市）",
                 "leads": ["长沙市人民政府"], "deadline": ("2026-12-31", YEAR_END)},
                {"key": "lvxin_zz", "region": "株洲市", "title": "长株潭“绿心”违规建设问题整改（株洲市）",
                 "leads": ["株洲市人民政府"], "participants": ["株洲市自然资源和规划局"],
                 "deadline": ("2026-06-30", MONTH_END)},
                {"key": "lvxin_xt", "region": "湘潭市", "title": "长株潭“绿心”违规建设问题整改（湘潭市）",
                 "leads": ["湘潭市人民政府"], "participants": ["湘潭市自然资源和规划局"],
                 "deadline": ("2026-06-30", MONTH_END)},
            ]}),
        ],
    },
    {
        "key": "lvxin_cs", "sup": "sheng_duban", "lead": "changsha_zhengfu",
        "plan": {"target": "长沙市绿心地区违规建设项目全部清理整治并完成生态修复。",
                 "measures": "1.逐项核查建立清单；2.违规项目依法拆除或整改；3.拆除后复绿；4.纳入绿心监管平台。",
                 "milestones": [("2025-12-31", "完成违规项目清单内拆除整治", 60)]},
        "steps": [
            ("2025-04-16", "lead", "sign"),
            ("2025-05-12", "lead", "submit_plan"),
            ("2025-05-19", "sup", "approve_plan"),
            ("2025-06-25", "lead", "monthly", {
                "until": "2026-10-25", "from": 10, "to": 80, "met": {"2026-01": [0]},
                "texts": ["违规项目清单核实完成。", "拆除整治完成过半。", "清单内项目拆除整治完成，复绿施工。"]}),
        ],
    },
    {
        "key": "lvxin_zz", "sup": "sheng_duban", "lead": "zhuzhou_zhengfu",
        "plan": {"target": "株洲市绿心地区违规建设项目全部清理整治并完成生态修复。",
                 "measures": "1.建立清单；2.依法拆除或完善手续；3.生态修复；4.绿心监管平台动态监管。",
                 "milestones": [("2025-12-31", "完成违规项目拆除整治", 70)]},
        "steps": [
            ("2025-04-15", "lead", "sign"),
            ("2025-05-08", "lead", "submit_plan"),
            ("2025-05-13", "sup", "approve_plan"),
            ("2025-05-26", "lead", "monthly", {
                "until": "2026-05-25", "from": 10, "to": 95, "met": {"2025-12": [0]},
                "texts": ["违规项目清单建立。", "拆除整治推进中。", "拆除整治完成，复绿完成。"]}),
            ("2026-06-25", "lead", "submit", {"text": "株洲市绿心地区违规建设项目全部完成整治和生态修复。"}),
            ("2026-07-10", "zhuzhou_duban", "pre_verify", {"opinion": "市级初验合格，同意报省验收。"}),
        ],
    },
    # From the seeds: 001 L29.
    {
        "key": "lvxin_xt", "sup": "sheng_duban", "lead": "xiangtan_zhengfu",
        "plan": {"target": "湘潭市绿心地区违规建设项目全部清理整治并完成生态修复。",
                 "measures": "1.建立清单；2.依法拆除（含“富力城项目涉绿问题”后续）；3.生态修复；4.动态监管。",
                 "milestones": [("2025-12-31", "完成违规项目拆除整治", 70)]},
        "steps": [
            ("2025-04-14", "lead", "sign"),
            ("2025-05-07", "lead", "submit_plan"),
            ("2025-05-13", "sup", "approve_plan"),
            ("2025-05-27", "lead", "monthly", {
                "until": "2026-04-25", "from": 15, "to": 95, "met": {"2025-11": [0]},
                "texts": ["清单核实完成。", "拆除整治完成七成。", "拆除整治完成，复绿验收中。"]}),
            ("2026-05-29", "lead", "submit", {"text": "湘潭市绿心地区违规建设项目全部完成整治和生态修复。"}),
            ("2026-06-08", "xiangtan_duban", "pre_verify", {"opinion": "市级初验合格，同意报省验收。"}),
            ("2026-06-19", "sheng_duban", "close", {
                "opinion": "经第三方核查，整改到位，同意销号。", "verifier": PROVINCE_LAB,
                "closure_doc_no": "湘督察办销〔2026〕24号"}),
        ],
    },
    # From the seeds: 003 L84.
    {
        "key": "paiwukou", "sup": "sheng_duban", "lead": "sheng_sthjt",
        "channel": GJ, "round": "2023年", "kind": "其他", "code": "CJBH-10", "region": "湖南省", "category": "水",
        "problem_title": "（十）深入推进入河排污口整治",
        "title": "深入推进入河排污口整治",
        "description": "003（十）：扎实推进入河排污口监测、溯源和整治，“一口一策”，完成一个、销号一个；"
                       "到2025年年底重点排污口基本完成整治，建立排污口长效管理机制。",
        "plan": {"target": "重点排污口基本完成整治，建立排污口长效管理机制。",
                 "measures": "1.排污口监测溯源；2.“一口一策”整治；3.截污治污；4.建立长效管理机制。"},
        "steps": [
            ("2025-04-09", "sup", "register"),
            ("2025-04-09", "sup", "assign", {
                "leads": ["湖南省生态环境厅"],
                "participants": ["湖南省水利厅", "湖南省住房和城乡建设厅", "湖南省发展和改革委员会",
                                 "湖南省农业农村厅", "湖南省自然资源厅"],
                "deadline": ("2025-12-31", YEAR_END)}),
            ("2025-04-14", "lead", "sign"),
            ("2025-05-06", "lead", "submit_plan"),
            ("2025-05-09", "sup", "approve_plan"),
            ("2025-05-26", "lead", "monthly", {
                "until": "2025-11-25", "from": 20, "to": 95,
                "texts": ["各市州排污口溯源基本完成。", "重点排污口整治完成八成。",
                          "重点排污口整治基本完成，长效管理办法印发。"]}),
            ("2025-12-20", "lead", "submit", {"text": "重点排污口基本完成整治，排污口长效管理机制已建立。",
                                             "files": [("document", "入河排污口整治工作总结.pdf")]}),
            ("2026-01-20", "sup", "close", {"opinion": "同意销号。", "closed_on": "2026-01-16",
                                            "closure_doc_no": "湘督察办销〔2026〕8号"}),
        ],
    },
    # From the seeds: 003 L100.
    {
        "key": "weikuangku", "sup": "sheng_duban", "lead": "sheng_sthjt",
        "channel": GJ, "round": "2023年", "kind": "其他", "code": "CJBH-15", "region": "湖南省", "category": "固废",
        "problem_title": "（十五）深入推进尾矿库污染治理",
        "title": "深入推进尾矿库污染治理",
        "description": "003（十五）：长江干流岸线3公里、重要支流和洞庭湖岸线1公里范围内尾矿库完成污染治理；"
                       "到2025年年底全省尾矿库数量下降到300座以内。",
        "plan": {
            "target": "全省尾矿库数量下降到300座以内，尾矿库环境和安全风险基本可控。",
            "measures": "1.“一库一策”安全风险管控；2.闭库治理并销号；3.健全监测预警体系；4.尾矿资源综合利用。",
            "milestones": [("2025-09-30", "完成岸线范围内尾矿库污染治理", 50),
                           ("2025-12-31", "全省尾矿库数量下降到300座以内", 100)],
        },
        "steps": [
            ("2025-04-09", "sup", "register"),
            ("2025-04-09", "sup", "assign", {
                "leads": ["湖南省生态环境厅", "国家矿山安全监察局湖南局", "湖南省工业和信息化厅", "湖南省应急管理厅"],
                "deadline": ("2025-12-31", YEAR_END)}),
            ("2025-04-15", "lead", "sign"),
            ("2025-05-08", "lead", "submit_plan"),
            ("2025-05-14", "sup", "approve_plan"),
            ("2025-05-26", "lead", "monthly", {
                "until": "2026-10-25", "from": 15, "to": 85, "met": {"2025-11": [0]},
                "texts": ["各市州尾矿库排查完成。", "岸线范围内尾矿库治理推进中。",
                          "闭库销号进度低于预期，已调度督促。", "全省尾矿库数量已降至312座。"]}),
        ],
    },
    # From the seeds: 003 L151.
    {
        "key": "xiaoshuidian", "sup": "sheng_duban", "lead": "sheng_shuili",
        "channel": GJ, "round": "2023年", "kind": "其他", "code": "CJBH-28", "region": "湖南省", "category": "生态",
        "problem_title": "（二十八）巩固小水电清理整改成果",
        "title": "巩固小水电清理整改成果",
        "description": "003（二十八）：完成长江经济带小水电清理整改“回头看”，限期退出类电站按要求退出，"
                       "逐站落实生态流量。",
        "plan": {"target": "限期退出类电站全部退出，保留电站逐站落实生态流量。",
                 "measures": "1.小水电清理整改“回头看”；2.退出类电站督促退出；3.生态流量监管；4.绿色小水电示范创建。"},
        "steps": [
            ("2025-04-09", "sup", "register"),
            ("2025-04-09", "sup", "assign", {
                "leads": ["湖南省水利厅"],
                "participants": ["湖南省发展和改革委员会", "湖南省自然资源厅", "湖南省生态环境厅",
                                 "湖南省农业农村厅", "湖南省林业局"],
                "deadline": ("2025-12-31", YEAR_END)}),
            ("2025-04-10", "sup", "link", {
                "other": "dani", "note": "举一反三：大鲵保护区小水电退出纳入全省小水电清理整改“回头看”"}),
            ("2025-04-14", "lead", "sign"),
            ("2025-05-07", "lead", "submit_plan"),
            ("2025-05-12", "sup", "approve_plan"),
            ("2025-05-26", "lead", "monthly", {
                "until": "2026-10-25", "from": 15, "to": 98,
                "texts": ["“回头看”排查启动。", "退出类电站退出完成九成。", "生态流量在线监测接入率达95%。",
                          "剩余电站退出完成。"]}),
            ("2026-11-05", "lead", "submit", {"text": "限期退出类电站全部退出，"
                                                      "保留电站生态流量全部落实并接入监管平台。",
                                             "files": [("document", "小水电清理整改回头看工作报告.pdf")]}),
        ],
    },
]

# 销号标准 the province's administrator sets for the channels it closes, after the histories (tasks
# closed before then were closed without one): (text, evidence kinds the item asks for).
CLOSURE_CHECKLISTS: dict[str, list[tuple[str, list[str]]]] = {
    ZY: [("整改措施全部落实，达到整改目标", []),
         ("整改前、整改后现场照片齐全，能反映整改成效", ["before", "after"]),
         ("验收意见（初验、现场核查或第三方评估）已出具", ["document"]),
         ("整改情况已在当地公示，无异议", [])],
    CJ: [("警示片披露问题的整改措施全部落实", []),
         ("整改后现场照片齐全", ["after"]),
         ("监测数据稳定达标（附监测报告）", ["monitoring"]),
         ("整改情况已在当地公示，无异议", [])],
    SD: [("整改措施全部落实，达到整改目标", []),
         ("整改后现场照片齐全", ["after"]),
         ("整改情况已公示，无异议", [])],
}

# Evidence attached to a closure application when a step names none.
DEFAULT_CLOSURE_FILES = [("before", "整改前现场照片.png"), ("after", "整改后现场照片.png"),
                         ("document", "整改销号申请报告.pdf")]
# Ledger fields of 登记 that the task dicts carry under TaskFields' own names.
FIELD_NAMES = ("title", "kind", "code", "description", "category", "problem_title", "responsible_leader",
               "contact", "target", "measures", "remarks", "complainant")


# --- evidence files -------------------------------------------------------------------------------

KIND_COLOURS = {"before": (139, 112, 82), "after": (72, 150, 96), "document": (90, 110, 160),
                "monitoring": (70, 130, 170)}


def png_image(rgb: tuple[int, int, int], width: int = 96, height: int = 64) -> bytes:
    """A small valid PNG: a coloured block with a lighter band, standing in for a site photo."""
    band = tuple(min(255, c + 60) for c in rgb)
    rows = [b"\x00" + bytes(band if height // 3 <= y < height // 3 + 10 else rgb) * width for y in range(height)]

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows)))
            + chunk(b"IEND", b""))


def pdf_document(lines: list[str]) -> bytes:
    """A one-page valid PDF with ASCII lines (the standard fonts carry no Chinese)."""
    text = " ".join(f"({line.replace('(', '[').replace(')', ']')}) '" for line in lines)
    content = f"BT /F1 12 Tf 56 780 Td 18 TL {text} ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def evidence_content(kind: str, filename: str, label: str) -> tuple[bytes, str]:
    """Bytes and content type for a demo file: a photo for .png names, a report for .pdf names."""
    digest = hashlib.sha256(f"{label}/{filename}".encode()).digest()
    if filename.endswith(".png"):
        base = KIND_COLOURS.get(kind, (128, 128, 128))
        # Nudge the colour per file so two photos of different tasks differ.
        return png_image(tuple(max(0, min(255, c + digest[i] % 31 - 15)) for i, c in enumerate(base))), "image/png"
    lines = ["Zhenggai taizhang - demo evidence", f"Task: {label}", f"Kind: {kind}", f"Ref: {digest.hex()[:16]}"]
    return pdf_document(lines), "application/pdf"


# --- the clock ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """Maps script days onto real instants, moved by whole years (see the module docstring)."""

    years: int

    @classmethod
    def fitting(cls, now: dt.datetime, last_day: dt.date) -> Clock:
        """The shift that puts ``last_day`` before today, and less than a year before it."""
        today = local_date(now)
        years = today.year - last_day.year
        if last_day.replace(year=last_day.year + years) >= today:
            years -= 1
        return cls(years)

    def day(self, day: dt.date) -> dt.date:
        return day.replace(year=day.year + self.years)

    def at(self, day: dt.date, minutes: int) -> dt.datetime:
        """``minutes`` after 09:00 Asia/Shanghai on the shifted day, as aware UTC."""
        local = dt.datetime.combine(self.day(day), dt.time(9), tzinfo=SHANGHAI) + dt.timedelta(minutes=minutes)
        return local.astimezone(dt.UTC)

    def round_name(self, name: str) -> str:
        """Year rounds inside the script window (2025年, 2026年) move with it; older ones are history."""
        match = re.fullmatch(r"(\d{4})年", name)
        if match and int(match.group(1)) >= _day(SETUP_DAY).year:
            return f"{int(match.group(1)) + self.years}年"
        return name


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# --- the script -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One action of one task's history, on a script day."""

    day: dt.date
    minute: int  # minutes after 09:00: a task's steps on one day keep their order
    task: str
    who: str  # a username, or "sup" / "lead": the task's supervisor / lead unit's user
    action: str
    params: dict[str, Any] = field(default_factory=dict)


def script() -> list[Step]:
    """Every task's history as steps, in the order they happened."""
    steps = []
    for index, spec in enumerate(TASKS):
        expanded = [item for entry in spec["steps"] for item in _expand(entry)]
        for n, (day, who, action, params) in enumerate(expanded):
            # Tasks start at different hours, so one day's events interleave like a real office's.
            steps.append(Step(day, (index % 8) * 60 + n, spec["key"], who, action, params))
    return sorted(steps, key=lambda st: (st.day, st.minute))


def _expand(entry: tuple) -> list[tuple[dt.date, str, str, dict[str, Any]]]:
    day, who, action, params = (*entry, {})[:4]
    if action == "monthly":
        return _monthly_reports(_day(day), who, params)
    return [(_day(day), who, action, params)]


def _monthly_reports(first: dt.date, who: str, spec: dict[str, Any]) -> list[tuple[dt.date, str, str, dict]]:
    """A report about the 25th of every (n-th) month, its percent on a line from ``from`` to ``to``."""
    days = list(_report_days(first, _day(spec["until"]), spec.get("every", 1)))
    if unknown := set(spec.get("met", {})) - {f"{day:%Y-%m}" for day in days}:
        raise ValueError(f"milestones met in months without a report: {sorted(unknown)}")
    texts = spec["texts"]
    reports = []
    for i, day in enumerate(days):
        params: dict[str, Any] = {"text": f"{day.month}月进展：{texts[i * len(texts) // len(days)]}"}
        if "to" in spec:
            params["percent"] = round(spec["from"] + (spec["to"] - spec["from"]) * i / max(1, len(days) - 1))
        if met := spec.get("met", {}).get(f"{day:%Y-%m}"):
            params["met"] = met
        if i == 0 and spec.get("first_files"):
            params["files"] = spec["first_files"]
        reports.append((day, who, "report", params))
    return reports


def _report_days(first: dt.date, last: dt.date, every: int) -> Iterator[dt.date]:
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        day = dt.date(year, month, min(first.day, 28))
        yield day - dt.timedelta(days=max(0, day.weekday() - 4))  # a weekend report goes in on Friday
        year, month = year + (month + every - 1) // 12, (month + every - 1) % 12 + 1


# --- the engine -----------------------------------------------------------------------------------


class MissingReferenceData(RuntimeError):
    """The migrations' rows (湖南省, the 市州, the channels) are not there."""

    def __init__(self, what: str) -> None:
        super().__init__(f"参考数据缺失：{what}（请先运行 tracker db upgrade）")


class Demo:
    """Builds the organisation, then plays the script through the operations."""

    def __init__(self, s: Session, clock: Clock, folder: Path) -> None:
        self.s, self.clock, self.folder = s, clock, folder
        self.regions: dict[str, Region] = {}
        self.units: dict[str, Unit] = {}
        self.members: dict[str, Membership] = {}
        self.channels: dict[str, Channel] = {}
        self.rounds: dict[str, Round] = {}
        self.tasks: dict[str, Task] = {}
        self.specs = {spec["key"]: spec for spec in TASKS}
        self.stored: list[StoredFile] = []

    # organisation

    def build_organisation(self, hash_method: str) -> None:
        now = self.clock.at(_day(SETUP_DAY), 0)
        self._reference_regions()
        for name, parent, is_zone in REGIONS:
            self.regions[name] = self._region(now, name, self._need(self.regions, parent), is_zone)
        units = [(name, "湖南省", "department", aliases) for name, aliases in PROVINCIAL_DEPARTMENTS] + OTHER_UNITS
        for name, region, kind, aliases in units:
            self.units[name] = self._unit(now, name, self.regions[region], kind, aliases)
        for username, display_name, email, memberships in USERS:
            self._user(now, username, display_name, email, memberships, hash_method)
        self.channels = {c.name: c for c in self.s.scalars(select(Channel))}
        for name in ROUNDS:
            self.rounds[name] = self._round(self.clock.round_name(name))

    def _reference_regions(self) -> None:
        province = self.s.scalar(select(Region).where(Region.parent_id.is_(None), Region.level == 0))
        if province is None:
            raise MissingReferenceData("湖南省")
        self.regions[province.name] = province
        for city in self.s.scalars(select(Region).where(Region.parent_id == province.id)):
            self.regions[city.name] = city

    @staticmethod
    def _need(table: dict[str, Any], name: str) -> Any:
        if name not in table:
            raise MissingReferenceData(name)
        return table[name]

    def _region(self, now: dt.datetime, name: str, parent: Region, is_zone: bool) -> Region:
        # An admin may have added the district already; the demo then uses it.
        found = self.s.scalar(select(Region).where(Region.parent_id == parent.id, Region.name == name))
        return found or create_region(self.s, None, now, name, parent, is_zone=is_zone)

    def _unit(self, now: dt.datetime, name: str, region: Region, kind: str, aliases: list[str]) -> Unit:
        found = self.s.scalar(select(Unit).where(Unit.region_id == region.id, Unit.name == name))
        return found or create_unit(self.s, None, now, name, region, kind, aliases)

    def _user(self, now, username, display_name, email, memberships, hash_method) -> None:
        (unit, role), *more = memberships
        user = create_user(self.s, None, now, NewUser(username, display_name, DEMO_PASSWORD, email or ""),
                           self.units[unit], role, hash_method=hash_method)
        for unit, role in more:
            add_membership(self.s, None, now, user, self.units[unit], role)
        # A user acts in the demo through the first membership listed.
        self.members[username] = user.memberships[0]

    def _round(self, name: str) -> Round:
        found = self.s.scalar(select(Round).where(Round.name == name))
        if found is not None:
            return found
        position = (self.s.scalar(select(func.max(Round.position))) or 0) + 1
        round_ = Round(name=name, position=position)
        self.s.add(round_)
        self.s.flush()
        return round_

    # playing the script

    def play(self, step: Step) -> None:
        spec = self.specs[step.task]
        who = spec.get(step.who, step.who) if step.who in ("sup", "lead") else step.who
        actor = self.members[who]
        now = self.clock.at(step.day, step.minute)
        special = {"register": self._register, "split": self._split, "edit": self._edit, "link": self._link}
        if step.action in special:
            special[step.action](step, actor, now)
            return
        params = dict(step.params)
        if step.action == "submit_plan":
            params = {**spec["plan"], **params}
        if step.action == "submit":
            params.setdefault("files", DEFAULT_CLOSURE_FILES)
        task = self.tasks[step.task]
        perform(self.s, task, step.action, actor, now, **self.resolve(params, task))

    def _register(self, step: Step, actor: Membership, now: dt.datetime) -> None:
        spec = self.specs[step.task]
        fields = TaskFields(
            channel_id=self._need(self.channels, spec["channel"]).id,
            round_id=self.rounds[spec["round"]].id,
            region_id=self.regions[spec["region"]].id,
            **{name: spec[name] for name in FIELD_NAMES if name in spec},
        )
        self.tasks[step.task] = register_task(self.s, actor, now, fields)

    def _split(self, step: Step, actor: Membership, now: dt.datetime) -> None:
        parent = self.tasks[step.task]
        children = step.params["children"]
        perform(self.s, parent, "split", actor, now, children=[self.resolve(c, parent) for c in children])
        # The children are made in the order given; name them by the keys the script uses.
        made = self.s.scalars(select(Task).where(Task.parent_id == parent.id).order_by(Task.id)).all()
        for child_spec, child in zip(children, made, strict=True):
            self.tasks[child_spec["key"]] = child

    def _edit(self, step: Step, actor: Membership, now: dt.datetime) -> None:
        task = self.tasks[step.task]
        edit_task(self.s, task, actor, now, task.version, step.params)

    def _link(self, step: Step, actor: Membership, now: dt.datetime) -> None:
        other = self.tasks[step.params["other"]]
        link_tasks(self.s, self.tasks[step.task], other, actor, now, step.params.get("note", ""))

    # turning names and script days into what the operations take

    def resolve(self, params: dict[str, Any], task: Task) -> dict[str, Any]:
        resolved: dict[str, Any] = {}
        for key, value in params.items():
            resolver = RESOLVERS.get(key)
            resolved.update(resolver(self, value, task) if resolver else {key: value})
        return resolved

    def unit_ids(self, names: list[str]) -> list[int]:
        return [self.units[name].id for name in names]

    def deadline(self, value: tuple, _task: Task) -> dict[str, Any]:
        day, template, *kind = value
        date = self.clock.day(_day(day)) if day else None
        text = template.format(y=date.year, m=date.month, d=date.day) if date else template
        return {"deadline": date, "deadline_text": text, "deadline_kind": kind[0] if kind else "date"}

    def milestones(self, value: list[tuple], _task: Task) -> dict[str, Any]:
        return {"milestones": [{"due_on": self.clock.day(_day(day)), "description": text, "planned_percent": pct}
                               for day, text, pct in value]}

    def stored_files(self, value: list[tuple], task: Task) -> dict[str, Any]:
        """(kind, name) makes a file of its own; (kind, name, (task key, kind, name)) sends the bytes of
        that task's file again under another name (the fake rectification the verifier must catch)."""
        files = []
        for kind, filename, *copy in value:
            source_key, source_kind, source_name = copy[0] if copy else (None, kind, filename)
            label = self.tasks[source_key].code if source_key else task.code
            content, content_type = evidence_content(source_kind, source_name, label)
            files.append(store(self.folder, io.BytesIO(content), kind=kind, filename=filename,
                               content_type=content_type))
        self.stored.extend(files)
        return {"files": files}

    def seed_checklists(self, day: dt.date) -> None:
        """The 销号标准 of ``CLOSURE_CHECKLISTS``, set by the province's administrator at the end of ``day``."""
        now = self.clock.at(day, 10 * 60)
        for channel, items in CLOSURE_CHECKLISTS.items():
            for text, kinds in items:
                closure.add_criterion(self.s, self.members["admin"], now, self._need(self.channels, channel), text,
                                      kinds)

    # the summary

    def summary(self, now: dt.datetime) -> str:
        today = local_date(now)
        waiting = {State.pending.value, State.assigned.value, State.signed.value, State.rectifying.value}
        overdue = sum(1 for t in self.tasks.values() if t.state in waiting and t.deadline and t.deadline < today)
        return (f"已载入演示数据：整改任务{len(self.tasks)}项（其中逾期{overdue}项），用户{len(self.members)}个"
                f"（初始密码 {DEMO_PASSWORD}），佐证材料{len(self.stored)}份")


def _resolve_met(demo: Demo, indexes: list[int], task: Task) -> dict[str, Any]:
    # Milestones are listed in the order the plan gave them (by date), so an index names one.
    return {"milestones_met": [task.milestones[i].id for i in indexes]}


RESOLVERS = {
    "leads": lambda demo, names, task: {"leads": demo.unit_ids(names)},
    "participants": lambda demo, names, task: {"participants": demo.unit_ids(names)},
    "region": lambda demo, name, task: {"region_id": demo.regions[name].id},
    "deadline": Demo.deadline,
    "milestones": Demo.milestones,
    "met": _resolve_met,
    "files": Demo.stored_files,
    "merge_into": lambda demo, key, task: {"merge_into": demo.tasks[key].id},
    "verifier": lambda demo, name, task: {"verifier_unit_id": demo.units[name].id},
    "closed_on": lambda demo, day, task: {"closed_on": demo.clock.day(_day(day))},
    "key": lambda demo, key, task: {},
}


def is_loaded(s: Session) -> bool:
    """A demo login (``admin`` first of all) exists: the demo is there already, or its names are taken."""
    names = [username.lower() for username, *_ in USERS]
    return s.scalar(select(User.id).where(func.lower(User.username).in_(names)).limit(1)) is not None


def load(s: Session, now: dt.datetime, *, hash_method: str = "scrypt", upload_folder: Path | None = None) -> str:
    """Build the demo data as of ``now`` (aware UTC); a Chinese one-line summary. Idempotent.

    Evidence files are written to ``upload_folder``; it is required because 申请销号 needs files.
    """
    if upload_folder is None:
        raise ValueError("载入演示数据需要上传目录（upload_folder）来存放佐证材料")
    if is_loaded(s):
        return ALREADY_LOADED
    steps = script()
    first_mail = (s.scalar(select(func.max(OutboxMail.id))) or 0) + 1
    demo = load_organisation(s, now, hash_method=hash_method, upload_folder=Path(upload_folder))
    try:
        for step in steps:
            demo.play(step)
        demo.seed_checklists(max(step.day for step in steps))
        # The history is not news: the notices its steps queued are not mailed to anyone.
        s.execute(delete(OutboxMail).where(OutboxMail.id >= first_mail))
        s.flush()
    except BaseException:
        # The caller rolls the rows back; take the files written so far with them.
        discard(demo.folder, demo.stored)
        raise
    return demo.summary(now)


def load_organisation(s: Session, now: dt.datetime, *, hash_method: str = "scrypt",
                      upload_folder: Path | None = None) -> Demo:
    """The demo's organisation alone as of ``now``: its regions, units, users and rounds, no task — an
    installation set up and ready for its ledger (``load`` plays the tasks' histories on it). The caller
    commits; run it on a database without the demo."""
    demo = Demo(s, Clock.fitting(now, max(step.day for step in script())), Path(upload_folder or "."))
    demo.build_organisation(hash_method)
    return demo
