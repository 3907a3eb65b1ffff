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
fn a_key_file_signs_as_rfc_8032_says_so_keys_made_before_keep_their_ids() {
    // RFC 8032 section 7.1, test 1: the seed, its public key, and its signature of no bytes.
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    std::fs::write(
        &path,
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
    )
    .unwrap();
    let signer = Signer::load_or_create(&path).unwrap();
    assert_eq!(
        hex::encode(signer.public_key().as_bytes()),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    let sig = base64::engine::general_purpose::STANDARD
        .decode(signer.sign(b""))
        .unwrap();
    assert_eq!(
        hex::encode(&sig),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
    assert!(signer.public_key().verifies(b"", &sig));
    assert!(!signer.public_key().verifies(b"x", &sig));
    let header = signature_header(signer.key_id(), &signer.sign(b"body"));
    let short = header.replace("sig=", "sig=AAAA");
    let keys = [(signer.key_id().to_string(), signer.public_key())];
    assert!(
        verify(b"body", &short, &keys)
            .unwrap_err()
            .contains("malformed signature")
    );
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
    let seed = std::fs::read_to_string(dir.path().join("k")).unwrap();
    assert!(!format!("{signer:?}").contains(seed.trim()));
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

/// A [`Durability`](publisher::Durability) that records what was synced, and what the floor
/// file held at the time.
#[derive(Default)]
struct Recorded(Vec<String>);

impl publisher::Durability for Recorded {
    fn file(&mut self, file: &std::fs::File) -> std::io::Result<()> {
        let len = file.metadata()?.len();
        self.0.push(format!("file ({len} bytes)"));
        Ok(())
    }

    fn dir(&mut self, dir: &Path) -> std::io::Result<()> {
        let floor = std::fs::read_to_string(dir.join("version.floor"))?;
        self.0.push(format!("dir, floor {}", floor.trim()));
        Ok(())
    }
}

#[test]
fn the_version_floor_is_synced_before_its_rename_and_its_directory_after() {
    let dir = tempfile::tempdir().unwrap();
    let floor = dir.path().join("version.floor");
    let mut sync = Recorded::default();
    publisher::write_floor(&floor, 42, &mut sync).unwrap();
    // The temporary file's bytes are on disk before the rename; the rename (the floor now 42) is
    // on disk when the directory is synced. `Publisher::publish` calls this with `Fsync` before it
    // serves the version (see the comment there).
    assert_eq!(sync.0, ["file (3 bytes)", "dir, floor 42"]);
    assert_eq!(std::fs::read_to_string(&floor).unwrap(), "42\n");
}

#[tokio::test]
async fn a_publish_commits_with_synchronous_full_and_the_writer_goes_back_to_normal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db")).await.unwrap();
    let pragma = "PRAGMA synchronous";
    let mut durable = store.full_sync_writer().await.unwrap();
    let (during,): (i64,) = sqlx::query_as(pragma)
        .fetch_one(durable.connection())
        .await
        .unwrap();
    durable.finish().await.unwrap();
    let after = store.full_sync_writer().await.unwrap();
    after.finish().await.unwrap();
    // 2 = FULL while a publish commits; a store write after it runs NORMAL (1) again.
    assert_eq!(during, 2);
    let signer = Arc::new(Signer::load_or_create(&dir.path().join("k")).unwrap());
    let p = Publisher::open(store.clone(), signer, dir.path().join("f"), None)
        .await
        .unwrap();
    let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let v = p
        .publish(
            &Content::new(&config(), |_| false),
            PublishReason::ColdStart,
            &[],
            t0,
        )
        .await
        .unwrap();
    assert_eq!(v.unwrap().version, 1);
    assert_eq!(store.writer_synchronous().await, 1);
    store.close().await;
}

#[tokio::test]
async fn a_due_or_other_key_signature_is_renewed_with_the_same_content_and_a_fresh_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db")).await.unwrap();
    let floor = dir.path().join("f");
    let old = Arc::new(Signer::load_or_create(&dir.path().join("old")).unwrap());
    let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let content = Content::new(&config(), |h| h == "cdn.x.test");
    let p = Publisher::open(store.clone(), old, floor.clone(), None)
        .await
        .unwrap();
    p.publish(&content, PublishReason::ColdStart, &[], t0)
        .await
        .unwrap();
    assert!(
        p.resign_if_due(t0 + chrono::Duration::hours(5))
            .await
            .unwrap()
            .is_none()
    );
    let v = p.resign_if_due(t0 + RESIGN_AFTER).await.unwrap().unwrap();
    assert_eq!((v.version, v.reason.as_str()), (2, "resign"));
    assert_eq!(v.content.as_ref(), Some(&content));
    // A new signing key (a rotation): the served document is re-signed by it at once.
    let new = Arc::new(Signer::load_or_create(&dir.path().join("new")).unwrap());
    let p = Publisher::open(store.clone(), new.clone(), floor, None)
        .await
        .unwrap();
    let at = t0 + RESIGN_AFTER + chrono::Duration::minutes(1);
    let v = p.resign_if_due(at).await.unwrap().unwrap();
    assert_eq!((v.version, v.key_id.as_str()), (3, new.key_id()));
    store.close().await;
}
