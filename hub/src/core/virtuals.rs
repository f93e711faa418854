//! The hub's decisions about virtual channels: the operator's policy, proposals, acceptance
//! and closes.

use super::*;

/// A parent's update to check at acceptance: the parent, the update its client signed, and
/// the fees paid in it.
#[derive(Debug, Clone, Copy)]
pub struct ParentUpdate<'a> {
    /// The parent.
    pub parent: Parent<'a>,
    /// The update.
    pub update: &'a StateRequest,
    /// The fees per asset paid in it (empty: none).
    pub fees: &'a [U256],
}

/// A parent of a virtual channel as the decisions need it: a snapshot under row lock.
#[derive(Debug, Clone, Copy)]
pub struct Parent<'a> {
    /// Its params.
    pub params: &'a Params,
    /// The virtual channel's participant whose parent it is (its client).
    pub owner: Role,
    /// The hub's role in it.
    pub hub: Role,
    /// Funded and usable.
    pub open: bool,
    /// Registered on chain and not concluded.
    pub in_dispute: bool,
    /// Its latest state signed by both.
    pub latest: &'a State,
}

/// The operator's policy on virtual channels (see [`crate::policy`]).
impl Parent<'_> {
    /// How the virtual channel is locked in it.
    pub fn link(&self) -> Link {
        Link::client_parent(self.owner, self.hub)
    }

    /// Its client.
    pub fn client(&self) -> Address {
        self.params.participants[self.hub.peer().index()]
    }
}

impl Rules {
    /// The fees per asset of a virtual channel opening with `opening` for `seconds` of
    /// validity, if it keeps within every limit given the books before it (`books[a]` for the
    /// opening's asset `a`), asked by its participant `asker`.
    pub fn check_virtual_policy(
        &self,
        opening: &State,
        seconds: u64,
        books: &[crate::policy::AssetBooks],
        asker: Role,
    ) -> Result<Vec<U256>, ProtocolError> {
        let mut fees = Vec::with_capacity(opening.outcome.assets.len());
        for (a, (holder, deposits)) in opening.outcome.assets.iter().zip(&opening.outcome.balances).enumerate() {
            let asset = self.asset(holder).ok_or_else(|| {
                ProtocolError::invalid("unknown_asset", format!("asset holder {holder} is not accepted by this hub"))
            })?;
            let books = books.get(a).copied().unwrap_or_default();
            fees.push(crate::policy::check_asset(
                &asset.symbol,
                &asset.virtual_policy,
                &books,
                *deposits,
                seconds,
                asker,
            )?);
        }
        Ok(fees)
    }

    /// Whether any asset's policy limits the hub's locked coins (per client, in total or as a
    /// fraction): those need the books read under the policy lock.
    pub fn limits_locked_coins(&self) -> bool {
        self.assets.iter().any(|a| {
            let p = &a.virtual_policy;
            p.max_locked_per_client.is_some() || p.max_locked_total.is_some() || p.max_locked_fraction_bps.is_some()
        })
    }

    /// The fees of `proposal` by `client` at `now`: those of its quote, which must be the
    /// hub's, unexpired and for exactly these terms; without a quote, `fees_now` (the fees
    /// the policy asks now) must all be zero.
    pub fn quoted_fees(
        &self,
        client: Address,
        proposal: &VirtualProposal,
        fees_now: Vec<U256>,
        now: u64,
    ) -> Result<Vec<U256>, ProtocolError> {
        let Some(quote) = &proposal.quote else {
            if fees_now.iter().any(|f| !f.is_zero()) {
                return Err(ProtocolError::conflict(
                    "quote_required",
                    "this hub charges a fee for virtual channels: ask POST /v1/virtual-channels/quote first",
                ));
            }
            return Ok(fees_now);
        };
        let asked = QuoteTerms {
            proposer: client,
            peer: proposal.params.participants[Role::Second.index()],
            parent: proposal.parent.state.channelId,
            deposits: &proposal.state.outcome.balances,
            valid_until: proposal.valid_until,
        };
        Ok(quote.check(self.deployment.chain_id, self.hub, &asked, Some(now))?.to_vec())
    }
}

/// Decisions on virtual channels (DESIGN.md section 3).
impl Rules {
    /// Checks a parent update that locks (`settle = None`) or settles (`settle = Some(final)`)
    /// virtual channel `v` in `parent`, signed by the parent's client, against the exact
    /// update the hub computes itself. Returns the digest to countersign.
    fn check_parent_update(
        &self,
        parent: Parent<'_>,
        update: &StateRequest,
        v_params: &Params,
        opening: &State,
        settle: Option<&State>,
        fees: &[U256],
    ) -> Result<B256, ProtocolError> {
        if !parent.open {
            return Err(ProtocolError::conflict(
                "parent_not_open",
                format!("parent channel {} is not open", parent.latest.channelId),
            ));
        }
        if parent.in_dispute {
            return Err(ProtocolError::conflict(
                "parent_in_dispute",
                format!("parent channel {} is in dispute", parent.latest.channelId),
            ));
        }
        if update.state.channelId != parent.latest.channelId {
            return Err(ProtocolError::invalid("wrong_parent", "the parent update is for another channel"));
        }
        if v_params.challengeDuration > parent.params.challengeDuration {
            return Err(ProtocolError::invalid(
                "challenge_too_long",
                format!(
                    "the virtual channel's challenge duration {} exceeds its parent's {}",
                    v_params.challengeDuration, parent.params.challengeDuration
                ),
            ));
        }
        let expected_version = parent.latest.version + 1;
        if update.state.version != expected_version {
            return Err(ProtocolError::conflict(
                "wrong_version",
                format!(
                    "parent update has version {}, the parent is at {}",
                    update.state.version, parent.latest.version
                ),
            ));
        }
        let expected = match settle {
            None => lock_in_parent(parent.latest, parent.link(), opening).map_err(|_| {
                let hub_short = opening.outcome.balances.iter().zip(&parent.latest.outcome.balances).any(|(v, b)| {
                    parent.link().pays(parent.hub, v).is_ok_and(|hub_pays| b[parent.hub.index()] < hub_pays)
                });
                if hub_short {
                    ProtocolError::conflict(
                        "insufficient_hub_balance",
                        "the hub's free balance in the parent is below its share of the lock",
                    )
                } else {
                    ProtocolError::invalid(
                        "insufficient_balance",
                        "the client's balance in the parent is below its deposit",
                    )
                }
            })?,
            Some(final_state) => settle_in_parent(parent.latest, final_state)?,
        };
        let expected = if fees.iter().any(|f| !f.is_zero()) {
            pay_fees(&expected, parent.hub, fees).map_err(|_| {
                ProtocolError::invalid(
                    "insufficient_balance",
                    "the client's balance in the parent is below its deposit and the fee",
                )
            })?
        } else {
            expected
        };
        if update.state != expected {
            return Err(ProtocolError::invalid(
                "parent_update_mismatch",
                "the parent update is not the parent's latest state with exactly this lock applied (balances, lock amounts and index map)",
            ));
        }
        self.verified_digest(&update.state, &update.signature, parent.client())
    }

    fn check_opening(&self, params: &Params, opening: &State, parent_assets: &[Address]) -> Result<(), ProtocolError> {
        let bounds = (self.channels.min_challenge_duration, self.channels.max_challenge_duration);
        // An app must be one the operator allows (`app_not_allowed`); its opening state the
        // app's start (`invalid_app_opening`).
        let rule = validate_virtual_params(params, bounds, self.channels.max_app_challenge_duration, &self.apps)?;
        if !params.isVirtual {
            return Err(ProtocolError::invalid("invalid_params", "a virtual channel must have isVirtual = true"));
        }
        if params.participants.contains(&self.hub) {
            return Err(ProtocolError::invalid(
                "invalid_params",
                "the hub cannot be a participant of a virtual channel",
            ));
        }
        if opening.version != 0 {
            return Err(ProtocolError::invalid(
                "wrong_version",
                format!("state has version {}, expected 0", opening.version),
            ));
        }
        validate_opening(params, opening, rule)?;
        if opening.isFinal {
            return Err(ProtocolError::invalid("final_state", "an opening state cannot be final"));
        }
        if opening.outcome.assets != parent_assets {
            return Err(ProtocolError::invalid(
                "assets_mismatch",
                "a virtual channel holds exactly its parents' assets, in their order",
            ));
        }
        if opening.outcome.balances.iter().all(|[a, b]| a.is_zero() && b.is_zero()) {
            return Err(ProtocolError::invalid("empty_virtual_channel", "a virtual channel must lock something"));
        }
        Ok(())
    }

    /// The cheap check before any lock or query: `client` signed both `opening` and its
    /// parent update `parent` (the full decisions check them again with the rest).
    pub fn check_signatures_first(
        &self,
        client: Address,
        opening: &State,
        signature: &[u8],
        parent: &StateRequest,
    ) -> Result<(), ProtocolError> {
        self.verified_digest(opening, signature, client)?;
        self.verified_digest(&parent.state, &parent.signature, client)?;
        Ok(())
    }

    /// Decides on a proposal by `client` (participant 0) with its parent snapshot `parent`,
    /// at unix time `now`, the hub's books being `books` (per asset). Returns the fees the
    /// proposer pays; nothing to sign: the hub signs only once both have.
    pub fn check_virtual_proposal(
        &self,
        client: Address,
        proposal: &VirtualProposal,
        parent: Parent<'_>,
        now: u64,
        books: &[crate::policy::AssetBooks],
    ) -> Result<Vec<U256>, ProtocolError> {
        let p = &proposal.params;
        if p.participants[0] != client {
            return Err(ProtocolError::invalid(
                "client_not_participant",
                "the proposer must be the virtual channel's participant 0",
            ));
        }
        self.check_opening(p, &proposal.state, &parent.latest.outcome.assets)?;
        if proposal.valid_until <= now || proposal.valid_until > now.saturating_add(self.channels.max_virtual_validity)
        {
            return Err(ProtocolError::invalid(
                "invalid_validity",
                format!(
                    "valid_until must be after now ({now}) and at most {} s ahead",
                    self.channels.max_virtual_validity
                ),
            ));
        }
        self.verified_digest(&proposal.state, &proposal.signature, client)?;
        let fees_now = self.check_virtual_policy(&proposal.state, proposal.valid_until - now, books, Role::First)?;
        let fees = self.quoted_fees(client, proposal, fees_now, now)?;
        self.check_parent_update(parent, &proposal.parent, p, &proposal.state, None, &fees)?;
        Ok(fees)
    }

    /// Decides on the acceptance of a proposed virtual channel by `client` (participant 1)
    /// with its signature `signature` on the opening state: every parent's update against
    /// the parent's current state (`updates`, in participant order: the proposer's as
    /// proposed, with its fees, then the acceptor's). Returns the digests of the parent
    /// updates in the same order, for the hub to countersign.
    pub fn check_virtual_accept(
        &self,
        client: Address,
        params: &Params,
        opening: &State,
        signature: &[u8],
        updates: &[ParentUpdate<'_>],
    ) -> Result<Vec<B256>, ProtocolError> {
        if params.participants[Role::Second.index()] != client {
            return Err(ProtocolError::not_found("no proposal to you with this id"));
        }
        if updates.iter().any(|u| u.parent.latest.outcome.assets != opening.outcome.assets) {
            return Err(ProtocolError::invalid(
                "assets_mismatch",
                "the accepting parent does not hold the virtual channel's assets",
            ));
        }
        self.verified_digest(opening, signature, client)?;
        updates.iter().map(|u| self.check_parent_update(u.parent, u.update, params, opening, None, u.fees)).collect()
    }

    /// Decides on a close: the final state signed by both (equal to the one recorded, if
    /// any), and each parent update against its parent (`parents[i]`, `None` once
    /// settled). Returns, per update in request order, its parent's position and the digest
    /// to countersign.
    pub fn check_virtual_close(
        &self,
        params: &Params,
        opening: &State,
        recorded: Option<&State>,
        close: &VirtualClose,
        parents: &[Option<Parent<'_>>],
    ) -> Result<Vec<(usize, B256)>, ProtocolError> {
        let last = &close.state;
        if !last.isFinal {
            return Err(ProtocolError::invalid("not_final", "a virtual channel closes from a final state"));
        }
        if let Some(recorded) = recorded {
            if recorded != last {
                return Err(ProtocolError::conflict(
                    "final_state_differs",
                    "another final state of this virtual channel is recorded",
                ));
            }
        } else {
            // An app channel's final state carries the app's data, which the hub never reads:
            // its coins depend only on the total, which both parents lock alike.
            let payment = params.app.is_zero();
            if last.channelId != opening.channelId
                || (payment && !last.appData.is_empty())
                || !last.outcome.locked.is_empty()
            {
                return Err(ProtocolError::invalid(
                    "invalid_final_state",
                    "the final state is not a state of this channel without locks (nor app data, for payments)",
                ));
            }
            // A state the adjudicator refuses could never fix V's record: a parent settled
            // with it off chain would leave the other (the hub's coins) unsettleable.
            if last.appData.len() > ingrid_client_sdk::app::MAX_APP_DATA {
                return Err(ingrid_client_sdk::app::AppError::AppDataTooLong.into());
            }
            if last.outcome.assets != opening.outcome.assets {
                return Err(ProtocolError::invalid(
                    "assets_changed",
                    "the final state's assets differ from the opening state's",
                ));
            }
            let (before, after) = (asset_totals(&opening.outcome)?, asset_totals(&last.outcome)?);
            if before != after {
                return Err(ProtocolError::invalid(
                    "total_changed",
                    "the final state's totals differ from the locked amounts",
                ));
            }
            for (i, participant) in params.participants.iter().enumerate() {
                self.verified_digest(last, &close.sigs[i], *participant)?;
            }
        }
        if close.parents.is_empty() {
            return Err(ProtocolError::invalid("no_parent_update", "a close settles at least one parent"));
        }
        let mut out = Vec::with_capacity(close.parents.len());
        for update in &close.parents {
            let (position, parent) = parents
                .iter()
                .enumerate()
                .find_map(|(i, p)| p.filter(|p| p.latest.channelId == update.state.channelId).map(|p| (i, p)))
                .ok_or_else(|| {
                    ProtocolError::conflict(
                        "parent_settled_or_unknown",
                        "the update is for a parent already settled, or not a parent",
                    )
                })?;
            if out.iter().any(|(p, _)| *p == position) {
                return Err(ProtocolError::invalid("duplicate_parent_update", "one update per parent"));
            }
            out.push((position, self.check_parent_update(parent, update, params, opening, Some(last), &[])?));
        }
        Ok(out)
    }
}
