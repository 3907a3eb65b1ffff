// A test is a specification, read top to bottom: its length is the behaviour it pins down.
#![allow(clippy::too_many_lines)]

use std::path::Path;
use std::sync::Arc;

use chrono::DateTime;

use super::*;
use crate::config::Config;
use crate::engine::Reason;
use crate::store::Store;

fn config() -> Config {
    let text = r#"
[client]
public_ip_list = ["223.5.5.5", "180.76.76.76"]
[[vendors]]
name = "a"
[[vendors]]
name = "b"
[[hosts]]
domain = "cdn-bak.x.test"
vendor = "b"
role = "other_vendor_backup"
paths = [{ path = "/p" }]
[[hosts]]
domain = "cdn.x.test"
vendor = "a"
role = "primary"
paths = [{ path = "/p" }]
[[merged_hosts]]
host = "image.x.test"
path_prefix = "/image"
rate = 0.5
[[regions]]
name = "r"
resolvers = [{ name = "isp", udp = "127.0.0.1:53" }]
"#;
    Config::parse(text, "t", Path::new(".")).unwrap()
}

#[test]
fn the_document_keeps_the_article_field_names_and_client_order() {
    let content = Content::new(&config(), |h| h == "cdn.x.test");
    let doc = Document::new(
        &content,
        7,
        DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        "abcd",
    );
    let v: serde_json::Value = serde_json::to_value(&doc).unwrap();
    assert_eq!(
        v["hostListConfig"][0],
        serde_json::json!({"host": "cdn.x.test", "rate": 1.0, "isDisabled": true})
    );
    assert_eq!(v["hostListConfig"][1]["host"], "cdn-bak.x.test");
    assert_eq!(
        v["mergeHostConfigs"][0],
        serde_json::json!({"host": "image.x.test", "pathPrefix": "/image", "rate": 0.5})
    );
    assert_eq!(v["reviveProbeInterval"], 600000);
    assert_eq!(v["configRequestInterval"], 600000);
    assert_eq!(v["configVersion"], 7);
    assert_eq!(
        v["publicIpList"],
        serde_json::json!(["223.5.5.5", "180.76.76.76"])
    );
    assert_eq!(v["expiresAt"], "2027-01-16T08:00:00Z");
    assert_eq!(v["keyId"], "abcd");
}

#[test]
fn a_signature_verifies_only_for_the_exact_bytes_and_the_right_key() {
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::load_or_create(&dir.path().join("k")).unwrap();
    let again = Signer::load_or_create(&dir.path().join("k")).unwrap();
    assert_eq!(
        signer.key_id(),
        again.key_id(),
        "the key is reused, not recreated"
    );
    let body = br#"{"configVersion":1}"#;
    let header = signature_header(signer.key_id(), &signer.sign(body));
    let keys = [(signer.key_id().to_string(), signer.public_key())];
    assert_eq!(verify(body, &header, &keys), Ok(()));
    assert!(
        verify(br#"{"configVersion":2}"#, &header, &keys)
            .unwrap_err()
            .contains("does not verify")
    );
    let other = Signer::load_or_create(&dir.path().join("k2")).unwrap();
    assert!(
        verify(
            body,
            &header,
            &[(other.key_id().into(), other.public_key())]
        )
        .unwrap_err()
        .contains("unknown keyid")
    );
    assert!(!format!("{signer:?}").contains(&hex::encode(signer.key.to_bytes())));
    let mode = std::fs::metadata(dir.path().join("k"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

#[tokio::test]
async fn versions_increase_only_on_change_survive_restarts_and_respect_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let floor = dir.path().join("version.floor");
    let signer = Arc::new(Signer::load_or_create(&dir.path().join("k")).unwrap());
    let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let cfg = config();
    let all_on = Content::new(&cfg, |_| false);
    let primary_off = Content::new(&cfg, |h| h == "cdn.x.test");
    {
        let store = Store::open(&db).await.unwrap();
        let p = Publisher::open(store.clone(), signer.clone(), floor.clone(), None)
            .await
            .unwrap();
        assert_eq!(
            p.publish(&all_on, PublishReason::ColdStart, &[], t0)
                .await
                .unwrap()
                .unwrap()
                .version,
            1
        );
        assert!(
            p.publish(
                &all_on,
                PublishReason::Config,
                &[],
                t0 + chrono::Duration::minutes(1)
            )
            .await
            .unwrap()
            .is_none()
        );
        assert_eq!(
            p.publish(&primary_off, PublishReason::of(Reason::QuorumFall), &[], t0)
                .await
                .unwrap()
                .unwrap()
                .version,
            2
        );
        // A rollback of content is a new, higher version.
        assert_eq!(
            p.publish(&all_on, PublishReason::of(Reason::Rise), &[], t0)
                .await
                .unwrap()
                .unwrap()
                .version,
            3
        );
        // Same content, but the signature is getting old: re-signed as a new version.
        let v = p
            .publish(&all_on, PublishReason::Config, &[], t0 + RESIGN_AFTER)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((v.version, v.reason.as_str()), (4, "resign"));
        store.close().await;
    }
    {
        // A restart goes on from where it was.
        let store = Store::open(&db).await.unwrap();
        let p = Publisher::open(store.clone(), signer.clone(), floor.clone(), None)
            .await
            .unwrap();
        assert_eq!(p.current().unwrap().version, 4);
        assert_eq!(
            p.publish(&primary_off, PublishReason::of(Reason::QuorumFall), &[], t0)
                .await
                .unwrap()
                .unwrap()
                .version,
            5
        );
        store.close().await;
    }
    {
        // An older copy of the database (here: a new one) still continues above the floor file …
        let store = Store::open(&dir.path().join("restored.db")).await.unwrap();
        let p = Publisher::open(store.clone(), signer.clone(), floor.clone(), None)
            .await
            .unwrap();
        assert_eq!(
            p.publish(&all_on, PublishReason::of(Reason::Rise), &[], t0)
                .await
                .unwrap()
                .unwrap()
                .version,
            6
        );
        store.close().await;
    }
    {
        // … and above --bump-version.
        let store = Store::open(&dir.path().join("restored2.db")).await.unwrap();
        let p = Publisher::open(store.clone(), signer, floor, Some(100))
            .await
            .unwrap();
        assert_eq!(
            p.publish(&all_on, PublishReason::of(Reason::Rise), &[], t0)
                .await
                .unwrap()
                .unwrap()
                .version,
            101
        );
        store.close().await;
    }
}
