"""Every word leadflow's server shows a person, in Chinese (zh-CN; docs/languages.md).

The same names and keys as `rules.vocabulary_en`, written as a Chinese sales team says
them (公海, 跟进, 商机), not word for word: sentences are built around their own word
order, so a phrase here may place its `{placeholders}` differently from the English one.
Pure data: nothing to import but the types.
"""

from __future__ import annotations

from typing import Literal

VariableType = Literal["string", "numeric", "boolean", "select"]

# An event as the clause of "当……时": a trigger, a timer's start or a sequence's exit.
EVENTS: dict[str, str] = {
    "lead.captured": "新线索进入",
    "lead.followed_up": "登记了一次跟进",
    "lead.claimed": "销售从公海领取了线索",
    "lead.reassigned": "线索被手动改派",
    "lead.released": "负责人把线索释放回公海",
    "lead.qualified": "线索通过资格认定",
    "lead.opportunity_opened": "创建了商机",
    "lead.won": "线索赢单",
    "lead.lost": "线索输单",
    "email.opened": "邮件被打开",
    "email.clicked": "邮件中的链接被点击",
    "email.bounced": "邮件被退回",
    "email.replied": "线索回复了邮件",
    "lead.unsubscribed": "线索退订",
    "lead.do_not_contact_set": "线索被列入免打扰",
    "lead.do_not_contact_lifted": "免打扰被解除",
    "lead.assigned": "线索被分配",
    "lead.task_created": "创建了任务",
    "lead.timer_fired": "计时器到期",
    "lead.reminder_sent": "发出了提醒",
    "lead.returned_to_pool": "线索退回公海",
    "lead.stage_changed": "线索阶段变化",
    "lead.scored": "线索评分变化",
    "lead.tagged": "线索被打上标签",
    "lead.intent_set": "线索意向被设定",
    "nurture.enrolled": "线索加入培育序列",
    "nurture.email_sent": "发出了培育邮件",
    "nurture.exited": "线索退出培育序列",
    "experiment.variant_assigned": "线索被分入实验分组",
    "notification.sent": "发出了通知",
    "notification.queued": "通知进入发送队列",
}
TIMER_EVENT = "计时器 {id} 到期"

# An event by its name, as a timeline or a notification shows it ("已跟进").
EVENT_NAMES: dict[str, str] = {
    "lead.captured": "新线索",
    "lead.followed_up": "已跟进",
    "lead.claimed": "从公海领取",
    "lead.reassigned": "已改派",
    "lead.released": "释放回公海",
    "lead.qualified": "资格认定",
    "lead.opportunity_opened": "创建商机",
    "lead.won": "赢单",
    "lead.lost": "输单",
    "email.opened": "邮件已打开",
    "email.clicked": "邮件链接被点击",
    "email.bounced": "邮件被退回",
    "email.replied": "邮件已回复",
    "lead.unsubscribed": "已退订",
    "campaign.spend_recorded": "记录活动花费",
    "lead.do_not_contact_set": "列入免打扰",
    "lead.do_not_contact_lifted": "解除免打扰",
    "lead.erased": "个人信息已删除",
    "lead.assigned": "已分配",
    "lead.task_created": "创建任务",
    "lead.timer_fired": "计时器到期",
    "lead.reminder_sent": "已发提醒",
    "lead.returned_to_pool": "退回公海",
    "lead.stage_changed": "阶段变更",
    "lead.scored": "评分变更",
    "lead.tagged": "已打标签",
    "lead.intent_set": "设定意向",
    "nurture.enrolled": "加入培育序列",
    "nurture.email_sent": "已发培育邮件",
    "nurture.exited": "退出培育序列",
    "experiment.variant_assigned": "分入实验分组",
    "notification.sent": "已发通知",
    "notification.queued": "通知排队中",
    "ruleset.published": "规则集已发布",
    "ruleset.activated": "规则集已启用",
    "directory.replaced": "销售名录已更新",
}
FOLLOW_UP_KINDS: dict[str, str] = {
    "call": "电话",
    "email": "邮件",
    "meeting": "会议",
    "visit": "拜访",
    "sms": "短信",
    "wechat": "微信",
}
STAGES: dict[str, str] = {
    "new": "新线索",
    "MQL": "MQL",
    "SQL": "SQL",
    "opportunity": "商机",
    "won": "赢单",
    "lost": "输单",
}
POOL_REASONS: dict[str, str] = {
    "unassigned": "无人可分配",
    "no_follow_up_48h": "48 小时未跟进",
    "idle_7d": "7 天未跟进",
    "released": "负责人主动释放",
    "rep_unavailable": "规则指定的销售无法接手",
    "team_unavailable": "规则指定的团队无人可接手",
}

VARIABLE_WORDS: dict[str, str] = {
    "source": "来源",
    "channel": "渠道",
    "region": "地区",
    "industry": "行业",
    "company_size": "公司规模",
    "intent": "意向",
    "score": "评分",
    "stage": "阶段",
    "campaign_id": "营销活动",
    "form_id": "表单",
    "email_domain": "邮箱域名",
    "has_phone": "有电话号码",
    "do_not_contact": "免打扰",
    "tags": "标签",
    "owner": "负责人",
    "team": "团队",
    "in_pool": "在公海中",
    "followups_count": "跟进次数",
    "touch_count": "进线次数",
    "hours_since_capture": "进入后的小时数",
}
VARIABLE_FAMILY_WORDS: dict[str, str] = {
    "variant.": "实验「{key}」的分组",
    "attributes.": "属性「{key}」",
}
BOOLEAN_FACTS: dict[str, tuple[str, str]] = {
    "has_phone": ("线索有电话号码", "线索没有电话号码"),
    "do_not_contact": ("线索在免打扰名单中", "线索不在免打扰名单中"),
    "in_pool": ("线索在公海中", "线索不在公海中"),
}

# Operators between a variable and a value ("来源为 website").
OPERATOR_WORDS: dict[VariableType, dict[str, str]] = {
    "string": {
        "equal_to": "为",
        "equal_to_case_insensitive": "为（不区分大小写）",
        "starts_with": "开头为",
        "ends_with": "结尾为",
        "contains": "包含",
        "matches_regex": "匹配正则",
        "non_empty": "不为空",
    },
    "numeric": {
        "equal_to": "等于",
        "greater_than": "大于",
        "greater_than_or_equal_to": "不少于",
        "less_than": "小于",
        "less_than_or_equal_to": "不超过",
    },
    "boolean": {"is_true": "为是", "is_false": "为否"},
    "select": {"contains": "包含", "does_not_contain": "不包含"},
}

ACTION_WORDS: dict[str, str] = {
    "assign_to_rep": "分配给销售",
    "assign_to_team": "分配给团队",
    "return_to_pool": "退回公海",
    "create_task": "创建任务",
    "notify": "发送通知",
    "enroll_in_sequence": "加入培育序列",
    "exit_sequence": "结束培育序列",
    "set_intent": "设定意向",
    "add_score": "调整评分",
    "set_stage": "设定阶段",
    "assign_variant": "分配实验分组",
    "add_tag": "打标签",
}
PARAM_WORDS: dict[str, dict[str, str]] = {
    "assign_to_rep": {"rep": "销售", "reassign": "线索已有负责人时也改派"},
    "assign_to_team": {
        "team": "团队",
        "strategy": "分配方式",
        "reassign": "线索已有负责人时也改派",
    },
    "return_to_pool": {"reason": "原因"},
    "create_task": {"task": "任务", "due_in": "完成时限"},
    "notify": {"to": "通知谁", "template": "消息", "channel": "发送方式"},
    "enroll_in_sequence": {"sequence": "培育序列"},
    "exit_sequence": {"sequence": "培育序列（不填则结束全部）"},
    "set_intent": {"intent": "意向"},
    "add_score": {"points": "分数"},
    "set_stage": {"stage": "阶段"},
    "assign_variant": {"experiment": "实验"},
    "add_tag": {"tag": "标签"},
}
VALUE_WORDS: dict[str, dict[str, str]] = {
    "strategy": {"round_robin": "轮流分配", "least_loaded": "分给在手线索最少的人"},
    "to": {
        "owner": "线索负责人",
        "manager": "团队经理",
        "director": "销售总监",
        "team": "团队群",
        "rep:": "{name}",
    },
    "stage": {
        "new": "新线索",
        "MQL": "市场认可线索（MQL）",
        "SQL": "销售认可线索（SQL）",
        "opportunity": "商机",
        "won": "赢单",
        "lost": "输单",
    },
    "intent": {"low": "低", "medium": "中", "high": "高"},
    "channel": {"email": "邮件"},
    "boolean": {"true": "是", "false": "否"},
    "reason": {
        "unassigned": "无人可分配",
        "no_follow_up_48h": "48 小时未跟进",
        "idle_7d": "7 天未跟进",
        "released": "负责人主动释放",
    },
}

# Durations: Chinese has no plural, so both forms are the same ("72 小时", "1 天 12 小时").
DURATION_UNITS: dict[str, tuple[str, str]] = {
    "weeks": ("周", "周"),
    "days": ("天", "天"),
    "hours": ("小时", "小时"),
    "minutes": ("分钟", "分钟"),
    "seconds": ("秒", "秒"),
}


# Sentences `rules.describe` writes. Actions read as commands ("分配给李伟"); differences
# as what the candidate does now, with the old value in brackets ("（原为……）").
PHRASES: dict[str, str] = {
    # lists
    "and": "{rest}和{last}",
    "or": "{rest}或{last}",
    "all_of": " 且 ",
    "any_of": " 或 ",
    "group": "（{inner}）",
    "never": "永不",
    "always": "始终",
    # conditions
    "leaf": "{variable}{operator} {value}",
    "leaf_no_value": "{variable}{operator}",
    # rules
    "rule": "当{trigger}时{condition}：{actions}。",
    "rule_if": "，如果{condition}",
    "rule_stops": "不再执行后续规则。",
    "no_actions": "不做任何操作",
    "actions": "；",
    # actions
    "assign_to_rep": "分配给{rep}",
    "assign_to_team": "分配给团队{team}，{strategy}",
    "reassign": "{action}（线索已有负责人时也改派）",
    "return_to_pool": "将线索退回公海（原因：{reason}）",
    "create_task": "创建任务 {task}，{due_in}内完成",
    "notify": "用消息 {template} 通知{to}",
    "notify_by": "通过{channel}用消息 {template} 通知{to}",
    "enroll_in_sequence": "加入培育序列 {sequence}",
    "exit_sequence": "结束培育序列 {sequence}",
    "exit_every_sequence": "结束所有培育序列",
    "set_intent": "将意向设为{intent}",
    "add_score": "评分加 {points} 分",
    "subtract_score": "评分减 {points} 分",
    "set_stage": "将线索推进到{stage}",
    "assign_variant": "为线索分配实验 {experiment} 的分组",
    "add_tag": "给线索打上标签 {tag}",
    "unknown_action": "{name} {params}",
    # timers, sequences, templates, experiments, the pool
    "timer": "计时器 {id} 启动后 {after}到期。",
    "timer_starts": "在{events}时启动。",
    "timer_restarts": "在{events}时重新计时。",
    "timer_stops": "在{events}时停止。",
    "sequence": "培育序列 {id} 依次发送：{steps}。",
    "sequence_ends": "在{events}时结束。",
    "step_first": "立即发送 {template}",
    "step": "{wait}后发送 {template}",
    "steps": "，然后 ",
    "template": "消息 {id} 的标题为“{subject}”。",
    "template_variants": "实验分组 {variants} 使用各自的标题。",
    "experiment": "实验 {id} 将线索分为 {variants}。",
    "variant": "{name}（{share}%）",
    "pool": "公海规则：{cooldown}；{limit}。",
    "pool_cooldown": "原负责人需等待 {duration}后才能再次领取同一线索",
    "pool_no_cooldown": "原负责人可以立即再次领取同一线索",
    "pool_limit": "每名销售每天最多领取 {count} 条线索",
    "pool_no_limit": "每名销售每天领取的线索数不限",
    # differences
    "assigns_instead": "改为分配给{after}（原为{before}）",
    "assigns_team_instead": "改为分配给团队{after}（原为团队{before}）",
    "strategy_instead": "改为{after}（原为{before}）",
    "now_reassigns": "现在也会改派已有负责人的线索",
    "no_longer_reassigns": "不再改派已有负责人的线索",
    "task_due_instead": "任务 {task} 改为 {after}内完成（原为 {before}）",
    "notifies_instead": "改为通知{after}（原为{before}）",
    "message_instead": "改为发送消息 {after}（原为 {before}）",
    "points_instead": "改为加 {after} 分（原为 {before} 分）",
    "action_instead": "改为“{after}”（原为“{before}”）",
    "action_added": "新增操作“{action}”",
    "action_removed": "不再“{action}”",
    "actions_reordered": "操作的先后顺序有调整",
    "runs_when_instead": "改为在{after}时执行（原为在{before}时）",
    "applies_if_instead": "改为在{after}时适用（原为{before}）",
    "priority": "优先级 {before} → {after}",
    "now_stops": "现在会停止执行后续规则",
    "no_longer_stops": "不再停止执行后续规则",
    "description_changed": "说明有修改",
    "runs_out_instead": "改为 {after}后到期（原为 {before}）",
    "now_also": "现在在{events}时也会{verb}",
    "no_longer": "不再在{events}时{verb}",
    "verb_starts": "启动",
    "verb_restarts": "重新计时",
    "verb_stops": "停止",
    "verb_ends": "结束",
    "step_waits_instead": "第 {step} 步改为等待 {after}（原为 {before}）",
    "step_sends_instead": "第 {step} 步改为发送 {after}（原为 {before}）",
    "step_added": "新增第 {step} 步：{words}",
    "step_removed": "删除第 {step} 步：{words}",
    "subject_instead": "标题改为“{after}”（原为“{before}”）",
    "body_changed": "正文有修改",
    "variant_subjects_changed": "各实验分组的标题有修改",
    "variant_added": "新增分组 {words}",
    "variant_removed": "删除分组 {name}",
    "variant_share_instead": "分组 {name} 的占比改为 {after}%（原为 {before}%）",
    "cooldown_instead": "原负责人的等待时间改为 {after}（原为 {before}）",
    "cooldown_added": "原负责人现在需等待 {after}后才能再次领取同一线索",
    "cooldown_removed": "原负责人改为可以立即再次领取（原需等待 {before}）",
    "limit_instead": "每名销售每天可领取的线索数改为 {after}（原为 {before}）",
    "any_number": "不限",
    "other_change": "其他细节有修改",
    "no_changes": "没有改动。",
}

# How a list of three reads: "甲、乙和丙".
LIST_SEPARATOR = "、"

# -- a replay's summary (`replay.summary`) ---------------------------------------------------

SUMMARY_PHRASES: dict[str, str] = {
    "last_days": "最近 {days} 天（{start} \u2013 {end}）",
    "between": "{start} \u2013 {end}（{days} 天）",
    "since": "{start} 起",
    "before": "{end} 之前",
    "all_history": "全部历史记录",
    "one_lead": "线索 {lead_id}",
    "nothing": "{window}：候选规则集对回放的 {leads}没有任何改变。",
    "leads": "{count} 条线索",
    "lead": "{count} 条线索",
    "first_move": "{window}：{move}。",
    "no_move": "{window}：每条线索的负责人都不变。",
    "move": "{leads}会分给{to}，而不是{from_}",
    "another_move": "{move}。",
    "more_moves": "另有 {moves} 组调整，共 {leads}。",
    "pool": "公海",
    "team": "团队{name}",
    "same_count": "{what}数量不变，但落在其他线索上（多 {gained} 条，少 {lost} 条）。",
    "no_change_to": "{what}没有变化。",
    "rules_changed": "候选规则集改动的规则：{rules}。",
    "list": "{rest}和{last}",
    "day": "{month}月{day}日",
    "day_in_year": "{year}年{month}月{day}日",
}
SUMMARY_OUTCOMES: dict[str, tuple[str, str, str]] = {
    "reclaim": (
        "会多收回 {count} 条线索到公海。",
        "会少收回 {count} 条线索到公海。",
        "收回公海",
    ),
    "reminder": ("会多发 {count} 条提醒。", "会少发 {count} 条提醒。", "提醒"),
    "nurture enrolment": (
        "会多 {count} 次加入培育序列。",
        "会少 {count} 次加入培育序列。",
        "培育序列加入",
    ),
    "email to lead": (
        "会多给线索发 {count} 封邮件。",
        "会少给线索发 {count} 封邮件。",
        "发给线索的邮件",
    ),
    "notification": ("会多发 {count} 条通知。", "会少发 {count} 条通知。", "通知"),
}
