// 控制台各页共用的文字（导航、登录、错误、时长），简体中文。
export default {
  "shell.skip": "跳到正文",
  "shell.navigation": "控制台",
  "shell.menu": "菜单",
  "nav.dashboard": "仪表盘",
  "nav.leads": "线索",
  "nav.worklist": "我的线索", // work (issue #19)
  "nav.pool": "公海",
  "nav.rulesets": "规则集",
  "nav.directory": "组织架构",
  "nav.quarantine": "隔离区",
  "shell.language": "语言",
  "shell.signOut": "退出登录",
  "signIn.title": "登录",
  "signIn.keyExplained":
    "控制台使用您的密钥调用 leadflow 的 API。密钥只保存在当前浏览器标签页（会话存储）中，通过 Authorization 请求头发送，绝不会出现在网址里。",
  "signIn.apiKey": "API 密钥",
  "signIn.submit": "登录",
  "signIn.unknownKey": "API 密钥无效。",
  "signIn.refused": "API 拒绝了该密钥，请重新登录。",
  "quarantine.banner": {
    other: "隔离区中有 {count} 条线索待处理（{parked} 条已搁置，{retrying} 条重试中）。",
  },
  "quarantine.review": "去处理",
  "error.unreachable": "控制台无法连接 API（{reason}）。",
  "error.status": "API 返回了 {status}",
  "table.empty": "暂无数据。",
  "duration.day": { other: "{count}天" },
  "duration.hour": { other: "{count}小时" },
  "duration.minute": { other: "{count}分钟" },
  "duration.second": { other: "{count}秒" },
  "duration.separator": "",
};
