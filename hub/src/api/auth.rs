//! Login: a challenge to sign with the channel key, then a session token.

use super::*;

/// Get a login challenge
///
/// Returns a text for the client's channel key to sign with EIP-191 `personal_sign`;
/// exchange the signature at `POST /v1/auth/token` before `expiresAt`. A challenge is good
/// for one login; issuing one stores nothing.
#[utoipa::path(post, path = "/v1/auth/challenge", tag = "auth", operation_id = "challenge",
    request_body = ChallengeRequest,
    responses(
        (status = 200, description = "The challenge to sign.", body = ChallengeResponse),
        (status = 400, description = "`malformed_json`: the body is not a `ChallengeRequest`.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 500, description = "`internal`: an unexpected failure; the cause is logged.", body = ErrorBody),
    ))]
pub(super) async fn challenge(State(app): State<AppState>, body: Body) -> Result<Json<ChallengeResponse>, ApiError> {
    let req: ChallengeRequest = parse(&body)?;
    let expires_at = now_secs() + app.hub.auth.challenge_ttl;
    let challenge = app.hub.challenges.issue(req.address, rand::random(), expires_at);
    Ok(Json(ChallengeResponse { challenge, expires_at }))
}

/// Log in
///
/// Exchanges a challenge signed by `address` for a bearer token of the client routes. A
/// client holds at most `limits.sessions_per_client` sessions (8 by default): a login beyond
/// it ends the client's oldest session.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", operation_id = "token",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "The session token.", body = TokenResponse),
        (status = 400, description = "`malformed_json`: the body is not a `TokenRequest`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: the challenge was not issued by this hub for `address` \
            or was altered, expired, was used already, or is not signed by `address`.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body exceeds 1 MiB.", body = ErrorBody),
        (status = 500, description = "`internal`: the database failed; the cause is logged.", body = ErrorBody),
    ))]
pub(super) async fn token(State(app): State<AppState>, body: Body) -> Result<Json<TokenResponse>, ApiError> {
    let req: TokenRequest = parse(&body)?;
    let (nonce, expires_at) = app
        .hub
        .challenges
        .check(req.address, &req.challenge, &req.signature, now_secs())
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let mut tx = app.pool.begin().await?;
    if !db::use_challenge(&mut tx, &nonce, expires_at).await? {
        return Err(ApiError::Unauthorized("the challenge was used already".into()));
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    db::ensure_client(&mut tx, req.address).await?;
    db::insert_session(&mut tx, keccak256(token.as_bytes()), req.address, app.hub.auth.session_ttl).await?;
    let ended = db::trim_sessions(&mut tx, req.address, app.hub.limits.config().sessions_per_client).await?;
    tx.commit().await?;
    // This process forgets them at once; the others when the database's notice arrives.
    for hash in &ended {
        app.hub.sessions.revoke(hash);
    }
    if !ended.is_empty() {
        tracing::info!(client = %req.address, ended = ended.len(), "a login beyond the cap of sessions ended the oldest");
    }
    Ok(Json(TokenResponse { token, expires_at: now_secs() + app.hub.auth.session_ttl }))
}
