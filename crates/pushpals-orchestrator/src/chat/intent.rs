//! What a chat message asks for, decided without a model: plain commands
//! ("status", "approve 12", "cancel 3"), questions, or new work.

/// A task as the person names it: `#3`, `3` (its number) or its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskRef {
    /// By number.
    Seq(u64),
    /// By id.
    Id(String),
}

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// How everything stands.
    Status,
    /// The commands chat understands.
    Help,
    /// Approve a task's pending approval.
    Approve(TaskRef),
    /// Deny it, with an optional reason.
    Deny(TaskRef, Option<String>),
    /// Cancel a task.
    Cancel(TaskRef),
    /// A question about one task.
    Question(TaskRef),
    /// Start the tasks of a plan that waits for an OK.
    ConfirmPlan(String),
    /// Drop a plan that waits for an OK.
    DiscardPlan(String),
    /// Work to plan.
    NewWork(String),
}

impl Intent {
    /// The intent's name in replies and events.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Help => "help",
            Self::Approve(_) => "approve",
            Self::Deny(..) => "deny",
            Self::Cancel(_) => "cancel",
            Self::Question(_) => "question",
            Self::ConfirmPlan(_) => "confirm_plan",
            Self::DiscardPlan(_) => "discard_plan",
            Self::NewWork(_) => "new_work",
        }
    }
}

fn task_ref(word: &str) -> Option<TaskRef> {
    let word = word.trim_matches(|c: char| matches!(c, ',' | '.' | '?' | '!' | ':'));
    let number = word.strip_prefix('#').unwrap_or(word);
    if let Ok(seq) = number.parse::<u64>() {
        return Some(TaskRef::Seq(seq));
    }
    let is_id = word.len() >= 4
        && word.len() <= 40
        && word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && word.bytes().any(|b| b.is_ascii_digit());
    is_id.then(|| TaskRef::Id(word.to_owned()))
}

const STATUS_PHRASES: [&str; 8] = [
    "status",
    "what's going on",
    "whats going on",
    "what is going on",
    "how is it going",
    "how are things",
    "progress",
    "what are you doing",
];

/// Reads a message.
pub fn parse(message: &str) -> Intent {
    let text = message.trim();
    let lower = text.to_lowercase();
    let bare = lower.trim_end_matches(['?', '!', '.']).trim();
    if STATUS_PHRASES.contains(&bare) {
        return Intent::Status;
    }
    if matches!(bare, "help" | "commands" | "") {
        return Intent::Help;
    }
    let words: Vec<&str> = bare.split_whitespace().collect();
    let original_words: Vec<&str> = text.split_whitespace().collect();
    if let [verb, target] = words.as_slice()
        && target.starts_with("plan-")
    {
        let plan = target.trim_end_matches(['.', '!']).to_owned();
        match *verb {
            "approve" | "ok" | "go" | "lgtm" | "start" => return Intent::ConfirmPlan(plan),
            "deny" | "reject" | "discard" | "drop" => return Intent::DiscardPlan(plan),
            _ => {}
        }
    }
    if let [verb, target, rest @ ..] = words.as_slice()
        && let Some(task) = task_ref(target)
    {
        match *verb {
            "approve" | "lgtm" | "ok" if rest.is_empty() => return Intent::Approve(task),
            "cancel" | "stop" if rest.is_empty() => return Intent::Cancel(task),
            "deny" | "reject" => {
                let reason = original_words.get(2..).map(|w| w.join(" "));
                return Intent::Deny(task, reason.filter(|r| !r.is_empty()));
            }
            _ => {}
        }
    }
    if lower.ends_with('?') || asks(&words) {
        // Any task it names: `#3`, `task 3`, `3`, or a task id.
        let mentioned = words.iter().find_map(|word| task_ref(word));
        return match mentioned {
            Some(task) => Intent::Question(task),
            None => Intent::Status,
        };
    }
    Intent::NewWork(text.to_owned())
}

/// Words a question about how things stand starts with; a request for
/// work starts otherwise ("add", "fix", "can you add ...").
const QUESTION_WORDS: [&str; 16] = [
    "how", "what", "what's", "whats", "why", "when", "where", "which", "who", "is", "are", "did",
    "does", "has", "was", "were",
];

/// Whether the words read as a question, with or without its `?`:
/// "how is #12", "what is the status of 12". Never work to plan.
fn asks(words: &[&str]) -> bool {
    let Some(first) = words.first() else {
        return false;
    };
    if words.len() >= 2 && words[0] == "status" && words[1] == "of" {
        return true;
    }
    QUESTION_WORDS.contains(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_commands_need_no_model() {
        assert_eq!(parse("status"), Intent::Status);
        assert_eq!(parse("  Status? "), Intent::Status);
        assert_eq!(parse("approve 12"), Intent::Approve(TaskRef::Seq(12)));
        assert_eq!(parse("approve #3"), Intent::Approve(TaskRef::Seq(3)));
        assert_eq!(
            parse("cancel k3m9x2ab"),
            Intent::Cancel(TaskRef::Id("k3m9x2ab".into()))
        );
        assert_eq!(
            parse("deny 4 Too broad, split it"),
            Intent::Deny(TaskRef::Seq(4), Some("Too broad, split it".into()))
        );
        assert_eq!(parse("deny 4"), Intent::Deny(TaskRef::Seq(4), None));
        assert_eq!(parse("help"), Intent::Help);
        assert_eq!(
            parse("ok plan-ab12cd34"),
            Intent::ConfirmPlan("plan-ab12cd34".into())
        );
        assert_eq!(
            parse("discard plan-ab12cd34"),
            Intent::DiscardPlan("plan-ab12cd34".into())
        );
    }

    #[test]
    fn questions_about_a_task_name_it() {
        assert_eq!(
            parse("how is task 2 doing?"),
            Intent::Question(TaskRef::Seq(2))
        );
        assert_eq!(parse("why did #5 fail?"), Intent::Question(TaskRef::Seq(5)));
        assert_eq!(parse("are we there yet?"), Intent::Status);
    }

    #[test]
    fn questions_without_a_question_mark_never_become_work() {
        assert_eq!(parse("how is #12"), Intent::Question(TaskRef::Seq(12)));
        assert_eq!(
            parse("how is k3m9x2ab"),
            Intent::Question(TaskRef::Id("k3m9x2ab".into()))
        );
        assert_eq!(
            parse("how is k3m9x2ab?"),
            Intent::Question(TaskRef::Id("k3m9x2ab".into()))
        );
        assert_eq!(
            parse("what is the status of 12"),
            Intent::Question(TaskRef::Seq(12))
        );
        assert_eq!(parse("status of 7"), Intent::Question(TaskRef::Seq(7)));
        assert_eq!(parse("what is going on with the build"), Intent::Status);
        assert_eq!(parse("is anything waiting for me"), Intent::Status);
        // Requests stay requests.
        assert_eq!(
            parse("can you add a settings screen"),
            Intent::NewWork("can you add a settings screen".into())
        );
        assert_eq!(
            parse("fix the crash in the parser"),
            Intent::NewWork("fix the crash in the parser".into())
        );
    }

    #[test]
    fn everything_else_is_new_work() {
        assert_eq!(parse("add X and Y"), Intent::NewWork("add X and Y".into()));
        // A verb with words after it that are not a task is work too.
        assert_eq!(
            parse("approve the new logo colours in the README"),
            Intent::NewWork("approve the new logo colours in the README".into())
        );
        assert_eq!(
            parse("stop using unwrap in src/"),
            Intent::NewWork("stop using unwrap in src/".into())
        );
    }
}
