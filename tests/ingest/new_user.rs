//! What a new user hit with a card-transactions repository written from the
//! README: records without a NOT NULL field, malformed and mistyped records,
//! late and duplicated events, and events of one card with the same event
//! time and different created times.

use std::collections::BTreeMap;

use feast_tests::kinesis::{Emulator, Kinesis};

use super::support::{Repo, iso};

pub(crate) const CARDS: &str = env!("CARGO_BIN_EXE_card-repo");
const STREAM: &str = "card_transactions";

/// One good transaction.
#[derive(Debug, Clone)]
struct Tx {
    card: String,
    amount: f64,
    merchant: &'static str,
    event_s: i64,
    created_s: i64,
}

impl Tx {
    fn json(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "card_id": self.card,
            "amount": self.amount,
            "merchant": self.merchant,
            "event_ts": iso(self.event_s),
            "created": iso(self.created_s),
        }))
        .unwrap()
    }

    /// What `card_activity` computes from it.
    fn amount_cents(&self) -> i64 {
        (self.amount * 100.0).round_ties_even() as i64
    }
}

fn card(i: usize) -> String {
    format!("c-{i:03}")
}

fn cards_repo(endpoint: &str) -> Repo {
    Repo::with_config(
        "project: cards\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n",
        CARDS,
        endpoint,
    )
}

#[test]
fn a_new_users_repo_keeps_bad_records_out_and_settles_ties_by_created() {
    let emu = Emulator::start();
    let kinesis = Kinesis::new(&emu.endpoint());
    kinesis.create_stream(STREAM, 2);
    let repo = cards_repo(&emu.endpoint());
    // Within the view's ttl (30 days) of now, in whole seconds.
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 86_400;

    // 40 cards, three transactions each at distinct times.
    let merchants = ["grocer", "cinema", "airline"];
    let mut good: Vec<Tx> = Vec::new();
    for i in 0..40 {
        for (k, merchant) in merchants.into_iter().enumerate() {
            good.push(Tx {
                card: card(i),
                amount: 3.25 + (i * 37 + k * 101) as f64 * 1.37,
                merchant,
                event_s: t0 + (k as i64) * 60 + i as i64,
                created_s: t0 + (k as i64) * 60 + i as i64 + 5,
            });
        }
    }
    // Card 7: two events at its newest event time; the one created later
    // wins whatever order they arrive in. It arrives first here.
    let newest7 = good
        .iter()
        .filter(|t| t.card == card(7))
        .map(|t| t.event_s)
        .max()
        .unwrap();
    let tie_winner = Tx {
        card: card(7),
        amount: 777.0,
        merchant: "winner",
        event_s: newest7 + 100,
        created_s: newest7 + 200,
    };
    let tie_loser = Tx {
        created_s: newest7 + 150,
        amount: 1.0,
        merchant: "loser",
        ..tie_winner.clone()
    };
    // Card 8: a late event (older than its newest) and a duplicate.
    let late = Tx {
        card: card(8),
        amount: 9999.0,
        merchant: "late",
        event_s: t0 - 3600,
        created_s: t0 - 3600,
    };
    let duplicate = good[3 * 8 + 2].clone();

    let mut entries: Vec<(String, Vec<u8>)> =
        good.iter().map(|t| (t.card.clone(), t.json())).collect();
    entries.push((tie_winner.card.clone(), tie_winner.json()));
    entries.push((tie_loser.card.clone(), tie_loser.json()));
    entries.push((late.card.clone(), late.json()));
    entries.push((duplicate.card.clone(), duplicate.json()));
    let event = iso(t0 + 1);
    let bad: Vec<(&str, String, &str)> = vec![
        (
            "c-100",
            "not json at all".to_owned(),
            "not JSON: expected ident at line 1 column 2",
        ),
        (
            "c-101",
            format!(r#"{{"card_id": "c-101", "merchant": "m", "event_ts": "{event}"}}"#),
            "field `amount` is missing; it is declared NOT NULL",
        ),
        (
            "c-102",
            format!(r#"{{"card_id": "c-102", "amount": null, "event_ts": "{event}"}}"#),
            "field `amount` is null; it is declared NOT NULL",
        ),
        (
            "c-103",
            format!(r#"{{"card_id": "c-103", "amount": "12.50", "event_ts": "{event}"}}"#),
            "field `amount`: expected Float64, found a string",
        ),
        (
            "c-104",
            format!(r#"{{"amount": 5.0, "event_ts": "{event}"}}"#),
            "field `card_id` is missing; it is required",
        ),
    ];
    for (key, data, _) in &bad {
        entries.push(((*key).to_owned(), data.as_bytes().to_vec()));
    }
    let placed = kinesis.put(STREAM, &entries);

    let r = repo.ingest_until_caught_up(&["--batch-size", "50"]);
    assert!(
        r.stdout.starts_with(&format!(
            "ingested {} records ({} dead-lettered)",
            entries.len(),
            bad.len()
        )),
        "{}",
        r.stdout
    );

    // Exactly the bad records are dead-lettered, each with its reason.
    let letters = repo.dead_letters("transactions");
    let got: BTreeMap<&[u8], &str> = letters
        .values()
        .map(|(reason, data)| (data.as_slice(), reason.as_str()))
        .collect();
    let want: BTreeMap<&[u8], &str> = bad
        .iter()
        .map(|(_, data, reason)| (data.as_bytes(), *reason))
        .collect();
    assert_eq!(got, want);
    let bad_positions: Vec<&(String, String)> = placed[placed.len() - bad.len()..].iter().collect();
    for p in bad_positions {
        assert!(letters.contains_key(p), "dead letter at {p:?}");
    }

    // Online: the newest transaction per card, by event time then created.
    let mut truth: BTreeMap<String, &Tx> = BTreeMap::new();
    for t in good
        .iter()
        .chain([&tie_winner, &tie_loser, &late, &duplicate])
    {
        match truth.get(&t.card) {
            Some(b) if (b.event_s, b.created_s) >= (t.event_s, t.created_s) => {}
            _ => {
                truth.insert(t.card.clone(), t);
            }
        }
    }
    assert_eq!(truth[&card(7)].merchant, "winner");
    let ids: Vec<String> = (0..40).map(card).chain(["c-101".into()]).collect();
    let r = repo.run(&[
        "get-online",
        "--features",
        "card_activity:amount_cents,card_activity:is_large,card_activity:merchant",
        "--entity",
        &format!("card_id={}", ids.join(",")),
        "--json",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    let column = |i: usize| results[i]["values"].as_array().unwrap().clone();
    let (cents, large, merchant) = (column(1), column(2), column(3));
    for (row, id) in ids.iter().enumerate() {
        match truth.get(id) {
            Some(t) => {
                assert_eq!(cents[row], t.amount_cents(), "{id}: amount_cents");
                assert_eq!(large[row], t.amount >= 500.0, "{id}: is_large");
                assert_eq!(merchant[row], t.merchant, "{id}: merchant");
            }
            None => {
                // The record without `amount` never reached the store.
                assert_eq!(results[1]["statuses"][row], "NOT_FOUND", "{id}");
            }
        }
    }

    // Offline: every accepted record once per time it was sent, none of
    // the bad ones, amounts as sent.
    let mut logged: Vec<(String, i64, i64, u64)> = Vec::new();
    for path in repo.offline_files("data/transactions") {
        let df = feast_runtime::offline_store::read_file(&path).unwrap();
        let cards = df.column("card_id").unwrap().str().unwrap().clone();
        let amounts = df.column("amount").unwrap().f64().unwrap().clone();
        let micros = |name: &str| {
            df.column(name)
                .unwrap()
                .cast(&feast_runtime::polars::prelude::DataType::Int64)
                .unwrap()
                .i64()
                .unwrap()
                .clone()
        };
        let (events, created) = (micros("event_ts"), micros("created"));
        for i in 0..df.height() {
            logged.push((
                cards.get(i).unwrap().to_owned(),
                events.get(i).unwrap() / 1_000_000,
                created.get(i).unwrap() / 1_000_000,
                amounts.get(i).unwrap().to_bits(),
            ));
        }
    }
    let mut want: Vec<(String, i64, i64, u64)> = good
        .iter()
        .chain([&tie_winner, &tie_loser, &late, &duplicate])
        .map(|t| (t.card.clone(), t.event_s, t.created_s, t.amount.to_bits()))
        .collect();
    logged.sort();
    want.sort();
    assert_eq!(logged, want);

    // Online and offline agree; then a record ingested online only (a
    // replay with `--only online`) is served, and `verify` names it.
    let r = repo.run(&["verify"]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.starts_with("card_activity: 40 entities agree\n"),
        "{}",
        r.stdout
    );
    let unlogged = Tx {
        card: card(200),
        amount: 42.0,
        merchant: "replayed",
        event_s: t0 + 500,
        created_s: t0 + 500,
    };
    kinesis.put(STREAM, &[(unlogged.card.clone(), unlogged.json())]);
    repo.ingest_until_caught_up(&["--only", "online"]);
    let r = repo.run(&["verify"]);
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout.lines().take(2).collect::<Vec<_>>(),
        [
            "card_activity: 1 of 41 entities differ",
            &format!(
                "  card_id=c-200: online has an event at {}, offline has none (written online only?)",
                iso(unlogged.event_s)
            ),
        ]
    );

    // String keys print as they are, without JSON quotes.
    let r = repo.run(&[
        "get-online",
        "--features",
        "card_activity:merchant",
        "--entity",
        "card_id=c-007",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, "card_id  merchant\nc-007    winner\n");
}
