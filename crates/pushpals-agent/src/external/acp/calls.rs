//! The tool calls an agent has announced and not yet finished, so that a
//! permission request is judged on what will really run. A request that
//! names an announced call is judged on everything said of that call. A
//! request that names none and describes nothing itself covers every call
//! still pending: OpenHands, for one, announces its actions and then asks
//! once, as "Confirm Agent Actions", for all of them. Judging them all is
//! never looser than judging one.

use serde_json::Value;

/// The calls announced in `session/update` and not yet completed or failed.
#[derive(Debug, Default)]
pub(super) struct Announced {
    calls: Vec<(String, Value)>,
}

impl Announced {
    /// Takes note of one `session/update`.
    pub(super) fn note(&mut self, update: &Value) {
        let Some(id) = update["toolCallId"].as_str() else {
            return;
        };
        match update["sessionUpdate"].as_str() {
            Some("tool_call") => {
                self.calls.retain(|(known, _)| known != id);
                self.calls.push((id.to_owned(), update.clone()));
            }
            Some("tool_call_update") => {
                if matches!(update["status"].as_str(), Some("completed" | "failed")) {
                    self.calls.retain(|(known, _)| known != id);
                } else if let Some((_, call)) = self.calls.iter_mut().find(|(known, _)| known == id)
                {
                    merge(call, update);
                }
            }
            _ => {}
        }
    }

    /// Whether a call with this id was announced and is not finished.
    pub(super) fn knows(&self, id: &str) -> bool {
        self.calls.iter().any(|(known, _)| known == id)
    }

    /// The calls a permission request about `asked` covers.
    pub(super) fn covered_by(&self, asked: &Value) -> Vec<Value> {
        let id = asked["toolCallId"].as_str().unwrap_or_default();
        if let Some((_, call)) = self.calls.iter().find(|(known, _)| known == id) {
            let mut call = call.clone();
            merge(&mut call, asked);
            return vec![call];
        }
        if describes_nothing(asked) && !self.calls.is_empty() {
            return self.calls.iter().map(|(_, call)| call.clone()).collect();
        }
        vec![asked.clone()]
    }
}

/// Sets the fields `over` says (and does not leave null) on `base`.
fn merge(base: &mut Value, over: &Value) {
    if let (Some(base), Some(over)) = (base.as_object_mut(), over.as_object()) {
        for (key, value) in over {
            if !value.is_null() {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// A request that says neither what it runs nor what it touches.
pub(super) fn describes_nothing(call: &Value) -> bool {
    !call["rawInput"].is_object()
        && call["locations"].as_array().is_none_or(Vec::is_empty)
        && matches!(call["kind"].as_str(), None | Some("other"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn announce(announced: &mut Announced, id: &str, command: &str) {
        announced.note(&json!({ "sessionUpdate": "tool_call", "toolCallId": id,
            "kind": "execute", "status": "in_progress", "rawInput": { "command": command } }));
    }

    #[test]
    fn a_confirmation_of_nothing_in_particular_covers_every_pending_call() {
        let mut announced = Announced::default();
        announce(&mut announced, "c1", "echo hi");
        announce(&mut announced, "c2", "git push");
        let batch = json!({ "toolCallId": "confirmation-1", "kind": "other",
            "title": "Confirm Agent Actions", "status": "pending" });
        let covered = announced.covered_by(&batch);
        assert_eq!(covered.len(), 2);
        assert_eq!(covered[1]["rawInput"]["command"], "git push");

        announced.note(&json!({ "sessionUpdate": "tool_call_update", "toolCallId": "c2", "status": "completed" }));
        let covered = announced.covered_by(&batch);
        assert_eq!(covered.len(), 1, "a finished call is no longer pending");
        assert_eq!(covered[0]["rawInput"]["command"], "echo hi");
    }

    #[test]
    fn a_request_naming_a_call_is_judged_on_all_that_was_said_of_it() {
        let mut announced = Announced::default();
        announce(&mut announced, "c1", "echo hi");
        announce(&mut announced, "c2", "rm -rf /");
        announced.note(
            &json!({ "sessionUpdate": "tool_call_update", "toolCallId": "c1",
            "status": "pending", "title": "say hi" }),
        );
        let covered =
            announced.covered_by(&json!({ "toolCallId": "c1", "kind": null, "status": "pending" }));
        assert_eq!(covered.len(), 1, "only the call it names");
        assert_eq!(covered[0]["rawInput"]["command"], "echo hi");
        assert_eq!(
            covered[0]["kind"], "execute",
            "a null does not erase the kind"
        );
        assert_eq!(covered[0]["title"], "say hi");
    }

    #[test]
    fn a_request_that_describes_itself_is_judged_as_it_is() {
        let mut announced = Announced::default();
        announce(&mut announced, "c1", "echo hi");
        let own =
            json!({ "toolCallId": "t9", "kind": "edit", "locations": [{ "path": "/w/a.rs" }] });
        assert_eq!(announced.covered_by(&own), vec![own.clone()]);
        let bare = json!({ "toolCallId": "t9", "kind": "other" });
        assert_eq!(
            Announced::default().covered_by(&bare),
            vec![bare.clone()],
            "nothing pending: the request alone"
        );
    }
}
