//! One credential check at a time per user name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;

/// Per-user queues. An entry exists only while someone holds or waits for that user's turn, so
/// memory is bounded by the requests in flight, whatever names an attacker sends.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    users: Mutex<HashMap<Box<str>, Arc<tokio::sync::Mutex<()>>>>,
}

/// A user's turn; the next waiter goes when it is dropped.
pub(crate) struct Turn<'a> {
    guard: Option<OwnedMutexGuard<()>>,
    turns: &'a Turns,
    user: Box<str>,
}

impl Turns {
    /// Waits up to `wait` for `user`'s turn; `None` if it did not come.
    pub(crate) async fn take(&self, user: &str, wait: Duration) -> Option<Turn<'_>> {
        let queue = {
            let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(users.entry(user.into()).or_default())
        };
        let mut turn = Turn {
            guard: None,
            turns: self,
            user: user.into(),
        };
        // On timeout, dropping `turn` still tidies the entry up.
        turn.guard = Some(tokio::time::timeout(wait, queue.lock_owned()).await.ok()?);
        Some(turn)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut users = self.turns.users.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map's own reference left: nobody holds or waits for this user.
        if users
            .get(&self.user)
            .is_some_and(|queue| Arc::strong_count(queue) == 1)
        {
            users.remove(&self.user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_turn_per_user_and_entries_are_removed() {
        let turns = Turns::default();
        let first = turns.take("alice", Duration::from_secs(1)).await.unwrap();
        let other = turns.take("bob", Duration::from_secs(1)).await.unwrap();
        assert!(
            turns
                .take("alice", Duration::from_millis(20))
                .await
                .is_none()
        );
        drop(first);
        let again = turns.take("alice", Duration::from_millis(20)).await;
        assert!(again.is_some());
        drop((again, other));
        assert_eq!(turns.len(), 0);
    }

    /// An attacker sending a new user name with every request: whether each turn is taken and
    /// released, times out behind another, or is abandoned mid-wait (the request dropped), no
    /// entry outlives its requests.
    #[tokio::test]
    async fn a_flood_of_names_leaves_no_entry_behind() {
        let turns = Arc::new(Turns::default());
        let held = turns.take("held", Duration::from_secs(1)).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..10_000u32 {
            let turns = Arc::clone(&turns);
            tasks.spawn(async move {
                match i % 3 {
                    // A distinct name: taken and released at once.
                    0 => drop(
                        turns
                            .take(&format!("user{i}"), Duration::from_secs(1))
                            .await,
                    ),
                    // Behind the held name: times out.
                    1 => assert!(turns.take("held", Duration::from_millis(5)).await.is_none()),
                    // Behind the held name, and the request goes away while it waits.
                    _ => {
                        let wait = turns.take("held", Duration::from_secs(60));
                        let _ = tokio::time::timeout(Duration::from_millis(5), wait).await;
                    }
                }
            });
        }
        while let Some(result) = tasks.join_next().await {
            result.unwrap();
        }
        assert_eq!(turns.len(), 1, "only the name still held");
        drop(held);
        assert_eq!(turns.len(), 0);
    }
}
