//! Worker hosts in the store, on both backends: an enrolment token works
//! once and only before it expires, the worker token it gives has the
//! `worker` scope only, and revoking stops both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backends;

use backends::{TestDb, on_both_backends};
use pushpals_core::Actor;
use pushpals_store::{Durability, NewWorker, StoreError, WorkerReport};

fn labels() -> Vec<String> {
    vec!["cargo".into(), "node".into()]
}

async fn an_enrolment_token_works_once_and_only_before_it_expires(db: &TestDb) {
    let store = db.open(Durability::Normal);
    let labels = labels();
    let added = store
        .write(move |tx| {
            tx.add_worker(
                &NewWorker {
                    name: "build-1",
                    labels: &labels,
                    enrol_hash: "enrol-1",
                    expires_at: 100,
                },
                Actor::User("admin".into()),
            )
        })
        .await
        .unwrap();
    assert_eq!(added.labels, ["cargo", "node"]);
    assert!(added.enrolled_at.is_none());
    let report = || WorkerReport {
        cores: 8,
        version: "0.1.0",
    };
    // Too late, then in time, then again: only the one in time works.
    let late = store
        .write(move |tx| tx.enrol_worker("enrol-1", 100, "token-late", &report()))
        .await
        .unwrap();
    assert!(late.is_none());
    let (enrolled, token_id) = store
        .write(move |tx| tx.enrol_worker("enrol-1", 99, "token-1", &report()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(enrolled.cores, Some(8));
    assert!(enrolled.enrolled_at.is_some());
    let again = store
        .write(move |tx| tx.enrol_worker("enrol-1", 50, "token-2", &report()))
        .await
        .unwrap();
    assert!(again.is_none(), "an enrolment token works once");
    let token = store.token("token-1").await.unwrap().unwrap();
    assert_eq!(token.name, "worker:build-1");
    assert_eq!(token.scopes, "worker");
    assert!(store.token("token-2").await.unwrap().is_none());
    assert!(store.token("token-late").await.unwrap().is_none());
    let listed = store.token_list().await.unwrap();
    assert_eq!(listed.iter().filter(|t| t.id == token_id).count(), 1);

    // Reporting keeps it fresh; a name that is not enrolled is not.
    let seen = store
        .write(|tx| {
            Ok((
                tx.worker_seen(
                    "build-1",
                    &WorkerReport {
                        cores: 16,
                        version: "0.1.1",
                    },
                )?,
                tx.worker_seen(
                    "ghost",
                    &WorkerReport {
                        cores: 1,
                        version: "x",
                    },
                )?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(seen, (true, false));
    let workers = store.workers().await.unwrap();
    assert_eq!(workers[0].cores, Some(16));
    assert_eq!(workers[0].version.as_deref(), Some("0.1.1"));
}

async fn a_name_is_taken_once_and_revoking_stops_its_token(db: &TestDb) {
    let store = db.open(Durability::Normal);
    let add = |hash: &'static str| {
        let labels = labels();
        let store = store.clone();
        async move {
            store
                .write(move |tx| {
                    tx.add_worker(
                        &NewWorker {
                            name: "build-1",
                            labels: &labels,
                            enrol_hash: hash,
                            expires_at: i64::MAX,
                        },
                        Actor::User("admin".into()),
                    )
                })
                .await
        }
    };
    add("enrol-1").await.unwrap();
    let twice = add("enrol-2").await.unwrap_err();
    assert!(matches!(twice, StoreError::Duplicate(_)), "{twice}");
    assert!(twice.to_string().contains("--revoke build-1"), "{twice}");
    store
        .write(|tx| {
            tx.enrol_worker(
                "enrol-1",
                1,
                "token-1",
                &WorkerReport {
                    cores: 2,
                    version: "0.1.0",
                },
            )
        })
        .await
        .unwrap()
        .unwrap();
    let revoked = store
        .write(|tx| {
            Ok((
                tx.revoke_worker("build-1", Actor::User("admin".into()))?,
                tx.revoke_worker("build-1", Actor::User("admin".into()))?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(revoked, (true, false));
    assert!(store.token("token-1").await.unwrap().is_none());
    assert!(store.workers().await.unwrap()[0].revoked_at.is_some());
    // A revoked name can be given again, to a new host.
    let renamed = add("enrol-3").await.unwrap();
    assert!(renamed.revoked_at.is_none() && renamed.enrolled_at.is_none());
    // A revoked, unused enrolment token does not work.
    store
        .write(|tx| tx.revoke_worker("build-1", Actor::User("admin".into())))
        .await
        .unwrap();
    let unused = store
        .write(|tx| {
            tx.enrol_worker(
                "enrol-3",
                1,
                "token-3",
                &WorkerReport {
                    cores: 2,
                    version: "0.1.0",
                },
            )
        })
        .await
        .unwrap();
    assert!(unused.is_none());
    assert!(store.verify_chain().await.unwrap().ok);
}

on_both_backends!(
    an_enrolment_token_works_once_and_only_before_it_expires,
    a_name_is_taken_once_and_revoking_stops_its_token,
);
