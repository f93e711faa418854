//! The wallet's virtual channels: propose, list proposals, accept, wait until open, settle.

use super::*;

/// Most pages of the hub's list [`Wallet::proposals`] reads (of up to
/// [`crate::client::PAGE_LIMIT`] entries each).
const MAX_PAGES: usize = 100;

impl Wallet {
    /// The stored record of virtual channel `id`.
    pub fn virtual_record(&self, id: B256) -> Result<VirtualRecord, WalletError> {
        self.store.load_virtual(id)?.ok_or(WalletError::UnknownChannel(id))
    }

    /// Proposes a virtual channel to `peer`, funded from this client's basic channel `parent`:
    /// `deposits[a] = [mine, peer's]` per asset of the parent (same order). The hub relays it;
    /// see [`Wallet::wait_virtual_open`]. Returns the virtual channel's id.
    pub async fn propose_virtual(
        &self,
        peer: Address,
        parent: B256,
        deposits: &[[U256; 2]],
        challenge_duration: u64,
        valid_until: u64,
    ) -> Result<B256, WalletError> {
        self.propose(peer, parent, deposits, challenge_duration, valid_until, Address::ZERO, Bytes::new()).await
    }

    /// Proposes a virtual channel running the app at `app` (one the hub allows, see
    /// [`Wallet::apps`]) from the app's opening data `app_data` (e.g.
    /// [`crate::app::coin_flip::opening`]); otherwise as [`Wallet::propose_virtual`]. This
    /// client is the app's first participant.
    #[allow(clippy::too_many_arguments)]
    pub async fn propose_app(
        &self,
        peer: Address,
        parent: B256,
        deposits: &[[U256; 2]],
        challenge_duration: u64,
        valid_until: u64,
        app: Address,
        app_data: Bytes,
    ) -> Result<B256, WalletError> {
        if app.is_zero() {
            return Err(WalletError::Invalid("an app channel names its app".into()));
        }
        let info = self.hub_info();
        let max = info.app_challenge_duration.unwrap_or(info.challenge_duration[1]);
        crate::app::check_app_challenge(challenge_duration, max)
            .map_err(|e| WalletError::Invalid(format!("{} ({})", e.message, e.code)))?;
        self.check_app_code(app).await?;
        self.propose(peer, parent, deposits, challenge_duration, valid_until, app, app_data).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn propose(
        &self,
        peer: Address,
        parent: B256,
        deposits: &[[U256; 2]],
        challenge_duration: u64,
        valid_until: u64,
        app: Address,
        app_data: Bytes,
    ) -> Result<B256, WalletError> {
        let _guard = self.lock.lock().await;
        let record = self.record(parent)?;
        let params = Params {
            challengeDuration: challenge_duration,
            nonce: U256::from_be_bytes(rand_nonce()),
            participants: [self.key.address(), peer],
            ledger: false,
            isVirtual: true,
            app,
        };
        let id = channel_id(&params);
        let opening = State {
            channelId: id,
            version: 0,
            outcome: Allocation {
                assets: record.latest.state.outcome.assets.clone(),
                balances: deposits.to_vec(),
                locked: vec![],
            },
            appData: app_data,
            isFinal: false,
        };
        self.check_app_opening(&params, &opening)?;
        let hub_index = record.hub_index;
        let locked = lock_in_parent(&record.latest.state, Link::client_parent(Role::First, hub_index), &opening)?;
        let d = self.deployment();
        let signature = d.sign_state(&self.key, &opening)?;
        // A hub that charges fees wants a quote; ask for one first (or when it says so).
        let request = QuoteRequest { peer, parent, deposits: deposits.to_vec(), valid_until };
        let mut quote = if self.info.virtual_fees { Some(self.hub.quote(&request).await?) } else { None };
        loop {
            let update = match &quote {
                Some(q) => pay_fees(&locked, hub_index, &self.checked_quote(q, parent, peer, deposits, valid_until)?)?,
                None => locked.clone(),
            };
            let proposal = VirtualProposal {
                signature: signature.clone(),
                parent: StateRequest { signature: d.sign_state(&self.key, &update)?, state: update },
                params: params.clone(),
                state: opening.clone(),
                valid_until,
                quote: quote.clone(),
            };
            let key = format!("propose-{id}-{}", quote.is_some());
            match self.hub.propose_virtual(&proposal, Some(&key)).await {
                Ok(_) => return Ok(id),
                // The hub charges fees (maybe since a reload): ask for a quote and propose again.
                Err(ClientError::Refused { status: 409, body, .. })
                    if body.error == "quote_required" && quote.is_none() =>
                {
                    quote = Some(self.hub.quote(&request).await?);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The fees of a quote the hub signed for exactly these terms.
    fn checked_quote(
        &self,
        quote: &Quote,
        parent: B256,
        peer: Address,
        deposits: &[[U256; 2]],
        valid_until: u64,
    ) -> Result<Vec<U256>, WalletError> {
        let terms = QuoteTerms { proposer: self.key.address(), peer, parent, deposits, valid_until };
        let fees = quote
            .check(self.info.chain_id, self.info.address, &terms, None)
            .map_err(|e| WalletError::Invalid(format!("the hub's quote: {e}")))?;
        Ok(fees.to_vec())
    }

    /// Proposals of virtual channels to this client, waiting for its answer (every page of
    /// the hub's list).
    pub async fn proposals(&self) -> Result<Vec<VirtualView>, WalletError> {
        let me = self.key.address();
        let mut proposals = Vec::new();
        let mut cursor: Option<String> = None;
        // A hub that pages for ever (or in a circle) is not followed for ever.
        for _ in 0..MAX_PAGES {
            let page = self.hub.virtual_channels_page(cursor.as_deref(), Some(VirtualStatus::Proposed)).await?;
            proposals.extend(
                page.channels
                    .into_iter()
                    .filter(|v| v.status == VirtualStatus::Proposed && v.params.participants[1] == me),
            );
            match page.next {
                Some(next) if cursor.as_ref() != Some(&next) => cursor = Some(next),
                Some(_) => return Err(WalletError::Invalid("the hub's list repeats its cursor".into())),
                None => return Ok(proposals),
            }
        }
        Err(WalletError::Invalid(format!("the hub's list of virtual channels runs past {MAX_PAGES} pages")))
    }

    /// Accepts a proposed virtual channel, locking it in this client's basic channel `parent`.
    /// Checks the proposer's signature; the caller decides beforehand whether the terms
    /// (`view.initial`'s deposits, `view.valid_until`) suit it.
    pub async fn accept_virtual(&self, view: &VirtualView, parent: B256) -> Result<VirtualRecord, WalletError> {
        let _guard = self.lock.lock().await;
        let me = self.key.address();
        if view.params.participants[1] != me || view.status != VirtualStatus::Proposed {
            return Err(WalletError::Invalid(format!("{} is not a proposal to {me}", view.id)));
        }
        if channel_id(&view.params) != view.id || view.initial.channelId != view.id || view.initial.version != 0 {
            return Err(WalletError::Invalid("the proposal's state is not its channel's opening state".into()));
        }
        self.check_app_opening(&view.params, &view.initial)?;
        if !view.params.app.is_zero() {
            self.check_app_code(view.params.app).await?;
        }
        let d = self.deployment();
        d.verify_state(&view.initial, &view.initial_sigs[0], view.params.participants[0])?;
        let record = self.record(parent)?;
        let link = Link::client_parent(Role::Second, record.hub_index);
        let update = lock_in_parent(&record.latest.state, link, &view.initial)?;
        let mine = d.sign_state(&self.key, &view.initial)?;
        let accept = VirtualAccept {
            signature: mine.clone(),
            parent: StateRequest { signature: d.sign_state(&self.key, &update)?, state: update.clone() },
        };
        let answer = self.hub.accept_virtual(view.id, &accept, Some(&format!("accept-{}", view.id))).await?;
        self.seal(&record, update, accept.parent.signature, answer.signature)?;
        let virtual_record = VirtualRecord {
            params: view.params.clone(),
            parents: vec![view.parents[0], parent],
            my_index: Role::Second,
            latest: FullySignedState { state: view.initial.clone(), sigs: [view.initial_sigs[0].clone(), mine] },
            pending: None,
            pending_sig: None,
            on_chain: None,
            app: self.app_kind(&view.params),
        };
        self.store.save_virtual(&virtual_record)?;
        Ok(virtual_record)
    }

    /// Waits until the peer accepted this client's proposal `id` and the hub countersigned
    /// both parents; then stores the parent's new state and the virtual channel.
    pub async fn wait_virtual_open(&self, id: B256, timeout: Duration) -> Result<VirtualRecord, WalletError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let view = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let view =
                self.hub.wait_virtual_channel(id, VirtualStatus::Proposed, left.min(Duration::from_secs(25))).await?;
            match view.status {
                VirtualStatus::Proposed => {}
                VirtualStatus::Rejected | VirtualStatus::Expired => return Err(WalletError::Rejected(id)),
                _ => break view,
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WalletError::Timeout("the peer to accept the virtual channel"));
            }
        };
        let d = self.deployment();
        d.verify_state(&view.initial, &view.initial_sigs[0], self.key.address())?;
        d.verify_state(&view.initial, &view.initial_sigs[1], view.params.participants[1])?;
        let parent = self.sync_channel(view.parents[0]).await?;
        if parent.latest.state.version < view.proposed_parent.state.version {
            return Err(WalletError::Invalid("the hub did not countersign the proposed parent update".into()));
        }
        let record = VirtualRecord {
            params: view.params.clone(),
            parents: view.parents.to_vec(),
            my_index: Role::First,
            latest: FullySignedState { state: view.initial.clone(), sigs: view.initial_sigs.clone() },
            pending: None,
            pending_sig: None,
            on_chain: None,
            app: self.app_kind(&view.params),
        };
        let _guard = self.lock.lock().await;
        self.store.save_virtual(&record)?;
        Ok(record)
    }

    /// Closes virtual channel `id` at the hub from its final state signed by both (`sigs` in
    /// participant order): settles this client's parent, and the peer's too when
    /// `peer_parent` (the peer's signed parent update) is given, in one request.
    ///
    /// Returns false when the hub cannot settle this parent yet: without the peer's update,
    /// the hub first fixes the final state on chain through the peer's parent (it registers
    /// it). Call again, with the same arguments, once that registration is confirmed.
    pub async fn settle_virtual(
        &self,
        id: B256,
        final_state: &State,
        sigs: [Bytes; 2],
        peer_parent: Option<StateRequest>,
    ) -> Result<bool, WalletError> {
        let _guard = self.lock.lock().await;
        let vrecord = self.virtual_record(id)?;
        let d = self.deployment();
        for (i, p) in vrecord.params.participants.iter().enumerate() {
            d.verify_state(final_state, &sigs[i], *p)?;
        }
        if !final_state.isFinal {
            return Err(WalletError::Invalid("a virtual channel closes from a final state".into()));
        }
        let record = self.record(vrecord.my_parent())?;
        let update = settle_in_parent(&record.latest.state, final_state)?;
        let mine = StateRequest { signature: d.sign_state(&self.key, &update)?, state: update.clone() };
        let mut parents = vec![mine.clone()];
        parents.extend(peer_parent);
        let close = VirtualClose { state: final_state.clone(), sigs: sigs.clone(), parents };
        let answer = self.hub.close_virtual(id, &close, Some(&format!("close-{id}-{}", update.version))).await?;
        if answer.signatures.is_empty() {
            return Ok(false);
        }
        let hub_sig = answer
            .signatures
            .into_iter()
            .find(|s| s.channel_id == record.id())
            .ok_or_else(|| WalletError::Invalid("the hub did not countersign this client's parent".into()))?;
        self.seal(&record, update, mine.signature, hub_sig.signature)?;
        let vrecord = VirtualRecord {
            latest: FullySignedState { state: final_state.clone(), sigs },
            pending: None,
            pending_sig: None,
            ..vrecord
        };
        self.store.save_virtual(&vrecord)?;
        Ok(true)
    }
}
