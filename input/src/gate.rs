//! The host's permission gate: one per viewer, in front of the injector.
//!
//! Everything a viewer sends is untrusted. The gate drops the input of a
//! view-only viewer, drops malformed events, and rate-limits floods, counting
//! each drop so the host can show what was refused. Only the gate can make an
//! [`Admitted`] event, and the injector only takes admitted events, so no path
//! reaches the operating system around it.
//!
//! The gate has no clock of its own: callers pass `now`, so tests can step
//! time and the session engine can use whatever clock it runs on.

use std::time::Instant;

use crate::event::InputEvent;

/// Identifies a viewer within one host session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ViewerId(pub u64);

/// What a viewer may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// The viewer sees the screen; its input never reaches the host.
    ViewOnly,
    /// The viewer controls the pointer and keyboard.
    Control,
}

/// How many events a viewer may send: a token bucket.
///
/// The defaults leave room for a 1000 Hz mouse plus fast typing, and stop a
/// broken or hostile viewer from queueing minutes of input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Events that may arrive at once after a quiet period.
    pub burst: u32,
    /// Events per second sustained.
    pub per_second: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            burst: 2000,
            per_second: 1000,
        }
    }
}

/// The longest text one event may carry, in characters. Typing and IME
/// commits are far shorter; a longer text is a paste gone wrong or an attack,
/// and typing it would hold the host's keyboard for many seconds.
pub const MAX_TEXT_CHARS: usize = 256;

/// Why the gate dropped an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The viewer may only watch.
    ViewOnly,
    /// The viewer sent more than its rate limit allows.
    RateLimited,
    /// The event was malformed (not-a-number positions, empty or over-long
    /// text, control characters).
    Invalid,
}

/// What a gate let through and dropped so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GateStats {
    /// Events passed on to the injector.
    pub admitted: u64,
    /// Events dropped because the viewer was view-only.
    pub dropped_view_only: u64,
    /// Events dropped by the rate limit.
    pub dropped_rate_limited: u64,
    /// Events dropped as malformed.
    pub dropped_invalid: u64,
}

impl GateStats {
    /// All drops together.
    pub fn dropped(&self) -> u64 {
        self.dropped_view_only + self.dropped_rate_limited + self.dropped_invalid
    }
}

/// An event a gate let through, tagged with its viewer.
///
/// Only [`Gate::admit`] creates these, which is what makes the gate
/// impossible to bypass on the way to the [`crate::Injector`].
#[derive(Clone, Debug, PartialEq)]
pub struct Admitted {
    viewer: ViewerId,
    event: InputEvent,
}

impl Admitted {
    /// The viewer that sent it.
    pub fn viewer(&self) -> ViewerId {
        self.viewer
    }

    /// The event.
    pub fn event(&self) -> &InputEvent {
        &self.event
    }
}

/// One viewer's gate.
#[derive(Clone, Debug)]
pub struct Gate {
    viewer: ViewerId,
    permission: Permission,
    limit: RateLimit,
    tokens: f64,
    refilled_at: Option<Instant>,
    stats: GateStats,
}

impl Gate {
    /// A gate for `viewer`, starting with a full bucket.
    pub fn new(viewer: ViewerId, permission: Permission, limit: RateLimit) -> Self {
        Self {
            viewer,
            permission,
            limit,
            tokens: f64::from(limit.burst),
            refilled_at: None,
            stats: GateStats::default(),
        }
    }

    /// The viewer this gate belongs to.
    pub fn viewer(&self) -> ViewerId {
        self.viewer
    }

    /// The viewer's current permission.
    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// Changes the viewer's permission; takes effect with the next event.
    ///
    /// Demoting a viewer that holds keys must also release them in the
    /// injector (its key-ups will be dropped from now on): [`crate::HostInput`]
    /// does both.
    pub fn set_permission(&mut self, permission: Permission) {
        self.permission = permission;
    }

    /// What this gate has let through and dropped.
    pub fn stats(&self) -> GateStats {
        self.stats
    }

    /// Lets `event` through, or says why not.
    pub fn admit(&mut self, event: InputEvent, now: Instant) -> Result<Admitted, Dropped> {
        let verdict = self.judge(&event, now);
        match verdict {
            Ok(()) => self.stats.admitted += 1,
            Err(Dropped::ViewOnly) => self.stats.dropped_view_only += 1,
            Err(Dropped::RateLimited) => self.stats.dropped_rate_limited += 1,
            Err(Dropped::Invalid) => self.stats.dropped_invalid += 1,
        }
        verdict.map(|()| Admitted {
            viewer: self.viewer,
            event,
        })
    }

    fn judge(&mut self, event: &InputEvent, now: Instant) -> Result<(), Dropped> {
        if self.permission == Permission::ViewOnly {
            return Err(Dropped::ViewOnly);
        }
        if !is_well_formed(event) {
            return Err(Dropped::Invalid);
        }
        self.refill(now);
        // A release can only take input away; dropping one could leave a key
        // held on the host, so releases pass even when the bucket is empty.
        if event.is_release() {
            return Ok(());
        }
        let cost = cost(event);
        if self.tokens >= cost {
            self.tokens -= cost;
            Ok(())
        } else {
            Err(Dropped::RateLimited)
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(then) = self.refilled_at {
            // `saturating_duration_since`: a clock that steps back is not a
            // reason to hand out tokens.
            let elapsed = now.saturating_duration_since(then).as_secs_f64();
            self.tokens = (self.tokens + elapsed * f64::from(self.limit.per_second))
                .min(f64::from(self.limit.burst));
        }
        self.refilled_at = Some(now);
    }
}

/// Tokens an event costs: typing costs per character, since each becomes a
/// key press on the host.
fn cost(event: &InputEvent) -> f64 {
    match event {
        InputEvent::Text(text) => text.chars().count().max(1) as f64,
        _ => 1.0,
    }
}

fn is_well_formed(event: &InputEvent) -> bool {
    match event {
        InputEvent::PointerMove(pos) => pos.x.is_finite() && pos.y.is_finite(),
        InputEvent::Wheel(delta) => delta.right.is_finite() && delta.down.is_finite(),
        InputEvent::Text(text) => {
            !text.is_empty()
                && text.chars().count() <= MAX_TEXT_CHARS
                && text
                    .chars()
                    .all(|c| !c.is_control() || c == '\n' || c == '\t')
        }
        InputEvent::ButtonDown(_)
        | InputEvent::ButtonUp(_)
        | InputEvent::KeyDown(_)
        | InputEvent::KeyUp(_)
        | InputEvent::Modifiers(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::event::{
        Code, DisplayId, KeyPress, Modifiers, PointerButton, PointerPosition, WheelDelta,
    };

    fn every_kind() -> Vec<InputEvent> {
        vec![
            InputEvent::PointerMove(PointerPosition {
                display: DisplayId::new("0"),
                x: 0.5,
                y: 0.5,
            }),
            InputEvent::ButtonDown(PointerButton::Left),
            InputEvent::ButtonUp(PointerButton::Left),
            InputEvent::Wheel(WheelDelta {
                right: 0.0,
                down: 1.0,
            }),
            InputEvent::KeyDown(KeyPress {
                code: Code::KeyA,
                logical: Some('a'),
            }),
            InputEvent::KeyUp(Code::KeyA),
            InputEvent::Text("x".to_owned()),
            InputEvent::Modifiers(Modifiers::NONE),
        ]
    }

    #[test]
    fn view_only_drops_every_kind_and_counts_it() {
        let now = Instant::now();
        let mut gate = Gate::new(ViewerId(1), Permission::ViewOnly, RateLimit::default());
        for event in every_kind() {
            assert_eq!(gate.admit(event, now), Err(Dropped::ViewOnly));
        }
        let stats = gate.stats();
        assert_eq!(stats.dropped_view_only, every_kind().len() as u64);
        assert_eq!(stats.admitted, 0);
    }

    #[test]
    fn switching_permission_takes_effect_at_once() {
        let now = Instant::now();
        let event = || InputEvent::ButtonDown(PointerButton::Left);
        let mut gate = Gate::new(ViewerId(1), Permission::ViewOnly, RateLimit::default());
        assert_eq!(gate.admit(event(), now), Err(Dropped::ViewOnly));
        gate.set_permission(Permission::Control);
        let admitted = gate.admit(event(), now).unwrap();
        assert_eq!(admitted.viewer(), ViewerId(1));
        assert_eq!(admitted.event(), &event());
        gate.set_permission(Permission::ViewOnly);
        assert_eq!(gate.admit(event(), now), Err(Dropped::ViewOnly));
        assert_eq!(gate.stats().admitted, 1);
        assert_eq!(gate.stats().dropped_view_only, 2);
    }

    #[test]
    fn a_flood_is_cut_at_the_burst_and_refills_with_time() {
        let limit = RateLimit {
            burst: 10,
            per_second: 100,
        };
        let start = Instant::now();
        let mut gate = Gate::new(ViewerId(1), Permission::Control, limit);
        let moves = |gate: &mut Gate, now| {
            (0..50)
                .filter(|_| {
                    gate.admit(InputEvent::Wheel(WheelDelta::default()), now)
                        .is_ok()
                })
                .count()
        };
        assert_eq!(moves(&mut gate, start), 10);
        // 50 ms later, 5 more tokens.
        assert_eq!(moves(&mut gate, start + Duration::from_millis(50)), 5);
        // A long pause refills only up to the burst.
        assert_eq!(moves(&mut gate, start + Duration::from_secs(60)), 10);
        assert_eq!(gate.stats().dropped_rate_limited, 40 + 45 + 40);
        // A clock stepping backwards hands out nothing.
        assert_eq!(moves(&mut gate, start), 0);
    }

    #[test]
    fn releases_pass_an_empty_bucket() {
        let limit = RateLimit {
            burst: 1,
            per_second: 1,
        };
        let now = Instant::now();
        let mut gate = Gate::new(ViewerId(1), Permission::Control, limit);
        assert!(
            gate.admit(InputEvent::ButtonDown(PointerButton::Left), now)
                .is_ok()
        );
        assert_eq!(
            gate.admit(InputEvent::ButtonDown(PointerButton::Right), now),
            Err(Dropped::RateLimited)
        );
        assert!(
            gate.admit(InputEvent::ButtonUp(PointerButton::Left), now)
                .is_ok()
        );
        assert!(gate.admit(InputEvent::KeyUp(Code::ShiftLeft), now).is_ok());
        assert!(
            gate.admit(InputEvent::Modifiers(Modifiers::NONE), now)
                .is_ok()
        );
    }

    #[test]
    fn text_costs_per_character() {
        let limit = RateLimit {
            burst: 10,
            per_second: 1,
        };
        let now = Instant::now();
        let mut gate = Gate::new(ViewerId(1), Permission::Control, limit);
        assert!(gate.admit(InputEvent::Text("abcdefgh".into()), now).is_ok());
        assert_eq!(
            gate.admit(InputEvent::Text("abc".into()), now),
            Err(Dropped::RateLimited)
        );
        assert!(gate.admit(InputEvent::Text("ab".into()), now).is_ok());
    }

    #[test]
    fn malformed_events_are_dropped() {
        let now = Instant::now();
        let mut gate = Gate::new(ViewerId(1), Permission::Control, RateLimit::default());
        let bad = [
            InputEvent::PointerMove(PointerPosition {
                display: DisplayId::new("0"),
                x: f32::NAN,
                y: 0.0,
            }),
            InputEvent::Wheel(WheelDelta {
                right: 0.0,
                down: f32::INFINITY,
            }),
            InputEvent::Text(String::new()),
            InputEvent::Text("a\u{1b}b".into()),
            InputEvent::Text("x".repeat(MAX_TEXT_CHARS + 1)),
        ];
        for event in bad {
            assert_eq!(gate.admit(event, now), Err(Dropped::Invalid));
        }
        assert_eq!(gate.stats().dropped_invalid, 5);
        assert!(
            gate.admit(InputEvent::Text("x".repeat(MAX_TEXT_CHARS)), now)
                .is_ok()
        );
        assert!(gate.admit(InputEvent::Text("a\nb\tc".into()), now).is_ok());
    }
}
