// The worklist page's words (/worklist, "My leads"), in English.
export default {
  "worklist.title": "My leads",
  "worklist.explained":
    "Open leads, overdue first: the earliest deadline at the top, then leads without one by their last activity.",
  "worklist.owner": "Whose leads",
  "worklist.chooseOwner": "choose a rep",
  "worklist.show": "Show",
  "worklist.more": "Show more",
  "worklist.caption": "Open leads of {owner}",
  "worklist.lead": "Lead",
  "worklist.company": "Company",
  "worklist.stage": "Stage",
  "worklist.next": "Next deadline",
  "worklist.lastActivity": "Last activity",
  "worklist.act": "Act",
  "worklist.logCall": "Log a call",
  "worklist.callLogged": "Call logged.",
  "worklist.none": "No open lead.",
  "worklist.noDeadline": "no deadline",
  "worklist.pickOwner": "Choose whose leads to show.",
  "worklist.count": { one: "{count} open lead shown.", other: "{count} open leads shown." },
};
