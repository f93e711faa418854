//! Limits against abuse, at the edge of the HTTP layer and before any database work:
//! request rates per IP address and per client (governor's keyed GCRA limiters), requests in
//! flight per client, and long polls per client and in total. A refusal is a 429 with a JSON
//! reason and `Retry-After`, and changes nothing.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::extract::ConnectInfo;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::*;
use crate::config::LimitsConfig;

/// The limits of one hub process (each replica counts its own requests).
pub struct Limits {
    config: LimitsConfig,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    logins: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_client: Option<DefaultKeyedRateLimiter<Address>>,
    in_flight: Counter<Address>,
    long_polls: Counter<Address>,
    long_polls_total: AtomicU32,
}

fn keyed<K: Hash + Eq + Clone>(per_second: u32, burst: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
}

impl Limits {
    /// The limits of `config`.
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            per_ip: keyed(config.ip_per_second, config.ip_burst),
            logins: NonZeroU32::new(config.logins_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n).allow_burst(n))),
            per_client: keyed(config.client_per_second, config.client_burst),
            in_flight: Counter::default(),
            long_polls: Counter::default(),
            long_polls_total: AtomicU32::new(0),
            config: config.clone(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// Forgets the rate state of keys idle long enough to be back at their full burst (the
    /// janitor calls it, so the maps do not grow with every address ever seen).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.per_ip {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.per_client {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.logins {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Takes one request of `ip` from its rate: of its /64 network for IPv6 (one host holds
    /// a /64 and could rotate through it), of itself for IPv4.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_ip else { return Ok(()) };
        limiter.check_key(&rate_key(ip)).map_err(|not_until| {
            ApiError::too_many(
                "ip_rate_limited",
                format!("more than {} requests per second from your address", self.config.ip_per_second),
                retry_after(not_until.wait_time_from(DefaultClock::default().now())),
            )
        })
    }

    /// Takes one login request of `ip` (its /64 for IPv6) from its rate of logins.
    pub fn check_login(&self, ip: IpAddr) -> Result<(), ApiError> {
        let Some(limiter) = &self.logins else { return Ok(()) };
        limiter.check_key(&rate_key(ip)).map_err(|not_until| {
            ApiError::too_many(
                "login_rate_limited",
                format!("more than {} logins per minute from your address", self.config.logins_per_minute),
                retry_after(not_until.wait_time_from(DefaultClock::default().now())),
            )
        })
    }

    /// Takes one request of `client` from its rate, and holds one of its requests in flight
    /// until the guard is dropped.
    pub fn admit_client(&self, client: Address) -> Result<Held<'_, Address>, ApiError> {
        if let Some(limiter) = &self.per_client {
            limiter.check_key(&client).map_err(|not_until| {
                ApiError::too_many(
                    "client_rate_limited",
                    format!("more than {} requests per second from your account", self.config.client_per_second),
                    retry_after(not_until.wait_time_from(DefaultClock::default().now())),
                )
            })?;
        }
        self.in_flight.hold(client, self.config.client_concurrent).ok_or_else(|| {
            ApiError::too_many(
                "too_many_concurrent_requests",
                format!("at most {} requests of your account at once", self.config.client_concurrent),
                1,
            )
        })
    }

    /// Holds one long poll of `client` (and one of the total) until the guard is dropped.
    pub fn admit_long_poll(&self, client: Address) -> Result<LongPoll<'_>, ApiError> {
        let total = self.config.long_polls_total;
        if self
            .long_polls_total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < total).then_some(n + 1))
            .is_err()
        {
            return Err(ApiError::too_many(
                "too_many_long_polls",
                "the hub holds as many long polls as it serves; poll again shortly".to_string(),
                1,
            ));
        }
        let total = TotalHeld(&self.long_polls_total);
        let held = self.long_polls.hold(client, self.config.long_polls_per_client).ok_or_else(|| {
            ApiError::too_many(
                "too_many_long_polls",
                format!("at most {} long polls of your account at once", self.config.long_polls_per_client),
                1,
            )
        })?;
        Ok(LongPoll { _client: held, _total: total })
    }
}

/// Whole seconds to wait, rounded up.
fn retry_after(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// Counts held per key; a key at zero has no entry.
struct Counter<K> {
    counts: Mutex<HashMap<K, u32>>,
}

impl<K> Default for Counter<K> {
    fn default() -> Self {
        Self { counts: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq + Copy> Counter<K> {
    fn hold(&self, key: K, max: u32) -> Option<Held<'_, K>> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Held { counter: self, key })
    }
}

/// One count held; released on drop.
pub struct Held<'a, K: Hash + Eq + Copy> {
    counter: &'a Counter<K>,
    key: K,
}

impl<K: Hash + Eq + Copy> Drop for Held<'_, K> {
    fn drop(&mut self) {
        let mut counts = self.counter.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

struct TotalHeld<'a>(&'a AtomicU32);

impl Drop for TotalHeld<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A long poll held (of its client and of the total); released on drop.
pub struct LongPoll<'a> {
    _client: Held<'a, Address>,
    _total: TotalHeld<'a>,
}

/// The client of a request's bearer token, as the limits layer found it (`None`: unknown or
/// expired), so the handler's [`Client`] does not look it up again.
#[derive(Clone, Copy)]
pub(crate) struct Session(pub(crate) Option<Address>);

/// The key of `ip`'s rate: an IPv4 address (IPv4-mapped IPv6 too) itself, an IPv6 address
/// its /64 network.
fn rate_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// The address a request comes from: behind a proxy, the last entry of the configured
/// header's last line (the one the proxy appended: a client may send forged lines and
/// entries before it); else, or when that is missing or malformed, the TCP peer (absent when
/// the router is called without a listener, as in unit tests).
fn client_ip(request: &axum::extract::Request, header: Option<&str>) -> Option<IpAddr> {
    let forwarded = header.and_then(|name| {
        let value = request.headers().get_all(name).iter().next_back()?.to_str().ok()?;
        value.rsplit(',').next()?.trim().parse().ok()
    });
    forwarded.or_else(|| request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))
}

/// The limits layer: the IP's rate first (before anything else is done for the request),
/// then, for a request with a client's bearer token, the session (one lookup), the client's
/// rate and a slot among its requests in flight, held until the answer is made.
pub(super) async fn limit(
    State(app): State<AppState>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let limits = &app.hub.limits;
    if matches!(request.extensions().get::<Listener>(), Some(Listener::Operator | Listener::Metrics)) {
        return next.run(request).await;
    }
    if let Some(ip) = client_ip(&request, limits.config.client_ip_header.as_deref()) {
        let login = request.uri().path().starts_with("/v1/auth/");
        if let Err(refused) = limits.check_ip(ip).and_then(|()| if login { limits.check_login(ip) } else { Ok(()) }) {
            return refused.into_response();
        }
    }
    let Some(token) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return next.run(request).await;
    };
    let client = match app.session(token).await {
        Ok(client) => client,
        Err(e) => return ApiError::from(e).into_response(),
    };
    request.extensions_mut().insert(Session(client));
    let Some(client) = client else { return next.run(request).await };
    match limits.admit_client(client) {
        Ok(_held) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LimitsConfig {
        LimitsConfig {
            ip_per_second: 1,
            ip_burst: 3,
            client_per_second: 1,
            client_burst: 2,
            client_concurrent: 2,
            long_polls_per_client: 1,
            long_polls_total: 2,
            ..LimitsConfig::default()
        }
    }

    fn code(r: Result<impl Sized, ApiError>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(e) => e.parts().1.error,
        }
    }

    #[test]
    fn an_address_gets_its_burst_then_waits_and_others_are_not_touched() {
        let limits = Limits::new(&config());
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().expect("ip"), "10.0.0.2".parse().expect("ip"));
        for _ in 0..3 {
            assert_eq!(code(limits.check_ip(a)), "ok");
        }
        let refused = limits.check_ip(a).expect_err("over the burst");
        let ApiError::TooManyRequests { code: reason, retry_after, .. } = &refused else { panic!("{refused:?}") };
        assert_eq!((*reason, *retry_after), ("ip_rate_limited", 1));
        assert_eq!(code(limits.check_ip(b)), "ok", "another address keeps its own rate");
    }

    #[test]
    fn a_clients_requests_in_flight_are_capped_and_released() {
        let limits = Limits::new(&LimitsConfig { client_per_second: 0, ..config() });
        let alice = Address::repeat_byte(1);
        let first = limits.admit_client(alice).expect("first");
        let second = limits.admit_client(alice).expect("second");
        assert_eq!(code(limits.admit_client(alice)), "too_many_concurrent_requests");
        assert_eq!(code(limits.admit_client(Address::repeat_byte(2))), "ok", "another client is not touched");
        drop(first);
        let third = limits.admit_client(alice).expect("a slot came back");
        drop((second, third));
        assert!(limits.in_flight.counts.lock().expect("lock").is_empty(), "no entry left for idle clients");
    }

    #[test]
    fn a_clients_rate_is_its_own() {
        let limits = Limits::new(&LimitsConfig { client_concurrent: 100, ..config() });
        let alice = Address::repeat_byte(1);
        assert_eq!(code(limits.admit_client(alice)), "ok");
        assert_eq!(code(limits.admit_client(alice)), "ok");
        assert_eq!(code(limits.admit_client(alice)), "client_rate_limited");
        assert_eq!(code(limits.admit_client(Address::repeat_byte(2))), "ok");
    }

    #[test]
    fn long_polls_are_capped_per_client_and_in_total() {
        let limits = Limits::new(&config());
        let (a, b, c) = (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3));
        let pa = limits.admit_long_poll(a).expect("a");
        assert_eq!(code(limits.admit_long_poll(a)), "too_many_long_polls", "per client");
        let pb = limits.admit_long_poll(b).expect("b");
        assert_eq!(code(limits.admit_long_poll(c)), "too_many_long_polls", "in total");
        drop(pa);
        let pc = limits.admit_long_poll(c).expect("a slot came back");
        drop((pb, pc));
        assert_eq!(limits.long_polls_total.load(Ordering::Acquire), 0);
        // A refusal per client gives the total's slot back.
        let _pa = limits.admit_long_poll(a).expect("a");
        assert_eq!(code(limits.admit_long_poll(a)), "too_many_long_polls");
        assert_eq!(limits.long_polls_total.load(Ordering::Acquire), 1);
    }

    #[test]
    fn behind_a_proxy_the_last_forwarded_address_counts() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let request = axum::http::Request::builder()
            .header("x-forwarded-for", "1.2.3.4, 10.9.8.7")
            .body(axum::body::Body::empty())
            .expect("request");
        assert_eq!(client_ip(&request, Some("x-forwarded-for")), Some(ip("10.9.8.7")));
        assert_eq!(client_ip(&request, None), None, "no listener: no peer address");
        // A forged line before the one the proxy appended does not count.
        let mut request = axum::http::Request::builder()
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-for", "10.9.8.7")
            .body(axum::body::Body::empty())
            .expect("request");
        assert_eq!(client_ip(&request, Some("x-forwarded-for")), Some(ip("10.9.8.7")));
        // Without the header (or with garbage in it), the TCP peer counts: no way around the rate.
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4000))));
        request.headers_mut().insert("x-forwarded-for", "not an address".parse().expect("value"));
        assert_eq!(client_ip(&request, Some("x-forwarded-for")), Some(ip("192.0.2.1")));
        request.headers_mut().remove("x-forwarded-for");
        assert_eq!(client_ip(&request, Some("x-forwarded-for")), Some(ip("192.0.2.1")));
    }

    #[test]
    fn logins_have_a_rate_of_their_own_per_address() {
        let limits = Limits::new(&LimitsConfig { logins_per_minute: 2, ..config() });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().expect("ip"), "10.0.0.2".parse().expect("ip"));
        assert_eq!(code(limits.check_login(a)), "ok");
        assert_eq!(code(limits.check_login(a)), "ok");
        assert_eq!(code(limits.check_login(a)), "login_rate_limited");
        assert_eq!(code(limits.check_login(b)), "ok");
        assert_eq!(code(Limits::new(&LimitsConfig { logins_per_minute: 0, ..config() }).check_login(a)), "ok", "off");
    }

    #[test]
    fn an_ipv6_network_shares_one_rate() {
        let limits = Limits::new(&config());
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"] {
            assert_eq!(code(limits.check_ip(ip(host))), "ok");
        }
        assert_eq!(code(limits.check_ip(ip("2001:db8:1:2:abcd::9"))), "ip_rate_limited", "the same /64");
        assert_eq!(code(limits.check_ip(ip("2001:db8:1:3::1"))), "ok", "another /64");
        assert_eq!(rate_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"), "IPv4-mapped is IPv4");
    }
}
