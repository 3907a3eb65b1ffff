//! What a signed-in session does and what stays apart from it: an override added and cleared
//! through the forms, signing out, a server without an admin token, and the JSON admin API, whose
//! bearer token a session cookie does not replace.

use std::time::Duration;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_added_and_cleared_through_the_forms_takes_effect_like_one_from_the_json_api() {
    let c = Console::start().await;
    let first =
        c.e.wait_doc(Duration::from_secs(15), "the first document", all_enabled)
            .await;
    let (cookie, csrf) = c.sign_in().await;

    // Bad input: said above the form with what was typed kept, nothing stored.
    let resp = c
        .add_form(&cookie, &csrf, "nope.test", Posted::SameOrigin)
        .await;
    assert_eq!(resp.status(), 400);
    let page = resp.text().await.unwrap();
    assert!(page.contains("no host `nope.test` in the config"), "{page}");
    assert!(
        page.contains(r#"value="oncall@shop""#),
        "the form keeps what was typed"
    );
    let mut bad_kind = vec![
        ("csrf", csrf.as_str()),
        ("host", PRIMARY),
        ("kind", "explode"),
    ];
    bad_kind.extend([("reason", "r"), ("actor", "a"), ("expires_in_s", "3600")]);
    let resp = c
        .post_signed_in("/config/overrides", &bad_kind, &cookie)
        .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("choose a kind"));
    assert!(c.overrides().await.is_empty());

    let resp = c
        .add_form(&cookie, &csrf, SAME_VENDOR, Posted::SameOrigin)
        .await;
    assert_eq!(resp.status(), 303);
    let location = resp.headers()[LOCATION].to_str().unwrap().to_string();
    let list = c.overrides().await;
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(location, format!("/config?done=added&id={id}"));
    assert_eq!(list[0]["host"], SAME_VENDOR);
    assert_eq!(list[0]["kind"], "force_disable");
    assert_eq!(list[0]["actor"], "oncall@shop");

    let doc =
        c.e.wait_doc(Duration::from_secs(10), "the override applied", |d| {
            disabled(d, SAME_VENDOR)
        })
        .await;
    assert!(version(&doc) > version(&first));
    let (_, page) = c.get(&location, Some(&cookie)).await;
    assert!(page.contains(&format!("Override {id} added.")));
    assert!(page.contains(&format!(r#"<tr id="override-{id}">"#)));
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "the reason is escaped"
    );
    assert!(!page.contains("<script>alert(1)"));
    assert!(page.contains(&format!("{SAME_VENDOR}: enabled → disabled")));

    let clear = format!("/config/overrides/{id}/clear");
    let resp = c.post_signed_in(&clear, &[("csrf", &csrf)], &cookie).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()[LOCATION],
        format!("/config?done=cleared&id={id}").as_str()
    );
    assert!(c.overrides().await.is_empty());
    let resp = c.post_signed_in(&clear, &[("csrf", &csrf)], &cookie).await;
    refused(resp, 404, &format!("active override {id}")).await;
    let resp = c
        .post_signed_in("/config/overrides/abc/clear", &[("csrf", &csrf)], &cookie)
        .await;
    refused(resp, 400, "`abc` is not an override id").await;
    c.e.wait_doc(Duration::from_secs(15), "the host back", all_enabled)
        .await;
    c.e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_drops_the_cookie_and_ends_the_session_on_the_server() {
    let c = Console::start().await;
    let (cookie, csrf) = c.sign_in().await;
    let resp = c
        .post(
            "/config/sign-out",
            &[("csrf", &csrf)],
            Some(&cookie),
            Posted::Header("origin", "http://evil.example"),
        )
        .await;
    refused(resp, 403, "cross-site").await;
    let resp = c
        .post_signed_in("/config/sign-out", &[("csrf", "x")], &cookie)
        .await;
    refused(resp, 403, "CSRF token").await;
    let resp = c
        .post_signed_in("/config/sign-out", &[("csrf", &csrf)], &cookie)
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()[LOCATION], "/config?done=signed_out");
    let set = resp.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("cdnwatch_session=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    // A copy of the old cookie no longer works.
    let resp = c
        .add_form(&cookie, &csrf, PRIMARY, Posted::SameOrigin)
        .await;
    refused(resp, 401, "sign in").await;
    let (_, page) = c.page(Some(&cookie)).await;
    assert!(page.contains(r#"id="sign-in""#));
    c.e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_the_page_says_admin_actions_are_disabled_and_refuses_sign_in() {
    let tokens = cdnwatch::auth::Tokens { admin: None };
    let c = Console::with(TestApp::stepped_with_tokens(|_| {}, tokens).await);
    let (_, page) = c.page(None).await;
    assert!(page.contains("Admin actions are disabled"), "{page}");
    assert!(!page.contains(r#"id="sign-in""#) && !page.contains(r#"id="add-override""#));
    let resp = c.sign_in_with(ADMIN_TOKEN, Posted::SameOrigin).await;
    refused(resp, 403, "admin actions are disabled").await;
    let resp = c
        .post("/config/overrides", &[], None, Posted::SameOrigin)
        .await;
    refused(resp, 403, "admin actions are disabled").await;
    c.e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_admin_api_still_needs_its_bearer_token_and_a_session_cookie_is_no_substitute() {
    let c = Console::start().await;
    let (cookie, _) = c.sign_in().await;
    let url = format!("{}/api/v1/overrides", c.e.base);
    let body =
        serde_json::json!({"host": PRIMARY, "kind": "force_disable", "reason": "r", "actor": "a"});
    let resp = c.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = c
        .http
        .post(&url)
        .header(COOKIE, &cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "the cookie does not open the JSON API");
    let resp = c
        .http
        .post(&url)
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = c.http.delete(format!("{url}/1")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = c
        .http
        .delete(format!("{url}/1"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(c.overrides().await.is_empty());
    c.e.stop().await;
}
