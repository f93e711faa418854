//! The seller's routes (direct close, proposals) and its terms for proposals.

use super::*;
use crate::Role;
use crate::app::conditional_payment;

/// What a seller accepts from buyers opening virtual channels to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SellerConfig {
    /// The seller's basic channel with the hub that funds its side of virtual channels.
    pub parent: B256,
    /// The largest deposit per asset a buyer may lock in one virtual channel.
    pub max_buyer_deposit: U256,
}

/// `POST /ingrid/proposals`: a buyer tells the seller it proposed virtual channel `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalNotice {
    /// The proposed virtual channel.
    pub id: B256,
}

/// The answer to a [`ProposalNotice`] the seller accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposalAccepted {
    /// The virtual channel.
    pub id: B256,
    /// Its opening state signed by both.
    pub latest: FullySignedState,
}

/// Why a seller refuses a proposal ([`check_proposal`]): `(reason code, explanation)`.
pub type ProposalRefusal = (&'static str, String);

/// Checks the terms of a virtual channel proposal to `seller`: it is a proposal to the
/// seller, the seller deposits nothing, and the buyer at most `config.max_buyer_deposit` of
/// each asset.
pub fn check_proposal(view: &VirtualView, seller: Address, config: &SellerConfig) -> Result<(), ProposalRefusal> {
    if view.status != VirtualStatus::Proposed || view.params.participants[1] != seller {
        return Err(("not_a_proposal", format!("{} is not a pending proposal to {seller}", view.id)));
    }
    for (asset, [buyer, mine]) in view.initial.outcome.assets.iter().zip(&view.initial.outcome.balances) {
        if !mine.is_zero() {
            return Err(("seller_deposit", format!("the seller deposits nothing, not {mine} of {asset}")));
        }
        if *buyer > config.max_buyer_deposit {
            return Err((
                "deposit_too_large",
                format!("the buyer's deposit {buyer} of {asset} is above {}", config.max_buyer_deposit),
            ));
        }
    }
    Ok(())
}

#[derive(Clone)]
pub(super) struct Seller {
    wallet: Arc<Wallet>,
    config: SellerConfig,
}

pub(super) type ErrorResponse = (StatusCode, Json<ErrorBody>);

pub(super) fn bad_json(rejection: JsonRejection) -> ErrorResponse {
    error_body(rejection.status(), "malformed_request", rejection.body_text())
}

pub(super) fn wallet_error(error: WalletError) -> ErrorResponse {
    let (status, code) = match &error {
        WalletError::UnknownChannel(_) => (StatusCode::NOT_FOUND, "unknown_channel"),
        WalletError::Signature(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_signature"),
        WalletError::Update(_) | WalletError::Invalid(_) | WalletError::UnknownAsset(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
        }
        WalletError::Hub(ClientError::Refused { status: 404, .. }) => (StatusCode::NOT_FOUND, "unknown_proposal"),
        WalletError::Hub(ClientError::Refused { status, .. }) if *status < 500 => {
            (StatusCode::UNPROCESSABLE_ENTITY, "hub_refused")
        }
        WalletError::Hub(_) => (StatusCode::BAD_GATEWAY, "hub_unavailable"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    error_body(status, code, error.to_string())
}

pub(super) async fn close(
    State(seller): State<Seller>,
    body: Result<Json<P2pClose>, JsonRejection>,
) -> Result<Json<CloseAnswer>, ErrorResponse> {
    let Json(close) = body.map_err(bad_json)?;
    Ok(Json(seller.wallet.answer_close(&close).await.map_err(wallet_error)?))
}

pub(super) async fn proposal(
    State(seller): State<Seller>,
    body: Result<Json<ProposalNotice>, JsonRejection>,
) -> Result<Json<ProposalAccepted>, ErrorResponse> {
    let Json(ProposalNotice { id }) = body.map_err(bad_json)?;
    let stored = seller.wallet.store().load_virtual(id).map_err(|e| wallet_error(e.into()))?;
    if let Some(record) = stored {
        // Already accepted (a retried notice).
        return Ok(Json(ProposalAccepted { id, latest: record.latest }));
    }
    let view = seller.wallet.hub().virtual_channel(id).await.map_err(|e| wallet_error(e.into()))?;
    check_proposal(&view, seller.wallet.address(), &seller.config)
        .map_err(|(code, message)| error_body(StatusCode::UNPROCESSABLE_ENTITY, code, message))?;
    if !view.params.app.is_zero() {
        // A seller runs payments, and conditional payments the buyer makes (pay on delivery).
        let sold = (seller.wallet.apps().conditional_payment, conditional_payment::opening(Role::First));
        if (view.params.app, &view.initial.appData) != (sold.0, &sold.1) {
            let message =
                format!("app {} is not sold here: payments, or conditional payments by the buyer", view.params.app);
            return Err(error_body(StatusCode::UNPROCESSABLE_ENTITY, "app_not_sold", message));
        }
    }
    let record = seller.wallet.accept_virtual(&view, seller.config.parent).await.map_err(wallet_error)?;
    Ok(Json(ProposalAccepted { id, latest: record.latest }))
}

/// The seller's routes: `POST /ingrid/close` (body [`P2pClose`], answer [`CloseAnswer`]) and
/// `POST /ingrid/proposals` (body [`ProposalNotice`], answer [`ProposalAccepted`]: the seller
/// fetches the proposal from the hub and accepts it if [`check_proposal`] passes, funding
/// it from `config.parent`). Every error answer is an [`ErrorBody`].
pub fn seller_routes(wallet: Arc<Wallet>, config: SellerConfig) -> Router {
    Router::new()
        .route("/ingrid/close", post(close))
        .route("/ingrid/proposals", post(proposal))
        .with_state(Seller { wallet, config })
}
