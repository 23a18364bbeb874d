//! The host side in one piece: a gate per viewer in front of one shared
//! injector, with the rules that tie them together (a viewer that leaves or
//! loses control lets go of everything it held).

use std::collections::HashMap;
use std::time::Instant;

use crate::backend::InputBackend;
use crate::event::InputEvent;
use crate::gate::{Dropped, Gate, GateStats, Permission, RateLimit, ViewerId};
use crate::injector::{InjectError, Injector};

/// A host-side input call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// No viewer with this id was added (or it was removed already).
    #[error("no viewer {0:?} is connected")]
    UnknownViewer(ViewerId),
    /// Injection failed.
    #[error(transparent)]
    Inject(#[from] InjectError),
}

/// What became of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It went to the operating system (or changed nothing there, such as a
    /// release of a key the viewer did not hold).
    Injected,
    /// The gate dropped it; it never reached the operating system.
    Dropped(Dropped),
}

/// All viewers' input on one host.
#[derive(Debug)]
pub struct HostInput<B: InputBackend> {
    injector: Injector<B>,
    gates: HashMap<ViewerId, Gate>,
    limit: RateLimit,
}

impl<B: InputBackend> HostInput<B> {
    /// Host input through `injector`, each viewer limited to `limit`.
    pub fn new(injector: Injector<B>, limit: RateLimit) -> Self {
        Self {
            injector,
            gates: HashMap::new(),
            limit,
        }
    }

    /// The shared injector.
    pub fn injector(&self) -> &Injector<B> {
        &self.injector
    }

    /// The shared injector, mutably (to change the display layout).
    pub fn injector_mut(&mut self) -> &mut Injector<B> {
        &mut self.injector
    }

    /// Adds a viewer the host has accepted. Adding an id that is already
    /// present first releases what it held and resets its counters.
    pub fn add_viewer(
        &mut self,
        viewer: ViewerId,
        permission: Permission,
    ) -> Result<(), HostError> {
        let released = self.injector.release_all(viewer);
        self.gates
            .insert(viewer, Gate::new(viewer, permission, self.limit));
        released.map_err(HostError::from)
    }

    /// Switches a connected viewer between view-only and control. A viewer
    /// that loses control lets go of every key and button it held, since its
    /// key-ups would be dropped from now on.
    pub fn set_permission(
        &mut self,
        viewer: ViewerId,
        permission: Permission,
    ) -> Result<(), HostError> {
        let gate = self
            .gates
            .get_mut(&viewer)
            .ok_or(HostError::UnknownViewer(viewer))?;
        gate.set_permission(permission);
        if permission == Permission::ViewOnly {
            self.injector.release_all(viewer)?;
        }
        Ok(())
    }

    /// A viewer's permission.
    pub fn permission(&self, viewer: ViewerId) -> Option<Permission> {
        self.gates.get(&viewer).map(Gate::permission)
    }

    /// What a viewer's gate has let through and dropped.
    pub fn stats(&self, viewer: ViewerId) -> Option<GateStats> {
        self.gates.get(&viewer).map(Gate::stats)
    }

    /// Removes a viewer (it disconnected or the host removed it), releasing
    /// everything it held. Returns its final counters. The viewer is gone
    /// even if a release failed.
    pub fn remove_viewer(&mut self, viewer: ViewerId) -> Result<GateStats, HostError> {
        let gate = self
            .gates
            .remove(&viewer)
            .ok_or(HostError::UnknownViewer(viewer))?;
        self.injector.release_all(viewer)?;
        Ok(gate.stats())
    }

    /// Passes one event from `viewer` through its gate and, if admitted, into
    /// the injector. `now` feeds the rate limit.
    pub fn handle(
        &mut self,
        viewer: ViewerId,
        event: InputEvent,
        now: Instant,
    ) -> Result<Outcome, HostError> {
        let gate = self
            .gates
            .get_mut(&viewer)
            .ok_or(HostError::UnknownViewer(viewer))?;
        match gate.admit(event, now) {
            Ok(admitted) => {
                self.injector.inject(&admitted)?;
                Ok(Outcome::Injected)
            }
            Err(dropped) => Ok(Outcome::Dropped(dropped)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{HostKey, ScrollAxis};
    use crate::event::{
        Code, DisplayId, KeyPress, Modifiers, PointerButton, PointerPosition, WheelDelta,
    };
    use crate::layout::{DisplayArea, DisplayLayout};
    use crate::record::{Action, RecordingBackend};

    const A: ViewerId = ViewerId(1);
    const B: ViewerId = ViewerId(2);

    fn host() -> HostInput<RecordingBackend> {
        host_with_record().0
    }

    fn host_with_record() -> (HostInput<RecordingBackend>, RecordingBackend) {
        let record = RecordingBackend::default();
        let layout = DisplayLayout::new([DisplayArea {
            id: DisplayId::new("main"),
            x: 0,
            y: 0,
            width: 1000,
            height: 500,
        }]);
        let mut host = HostInput::new(Injector::new(record.clone(), layout), RateLimit::default());
        host.add_viewer(A, Permission::Control).unwrap();
        host.add_viewer(B, Permission::Control).unwrap();
        (host, record)
    }

    fn send(host: &mut HostInput<RecordingBackend>, viewer: ViewerId, event: InputEvent) {
        assert_eq!(
            host.handle(viewer, event, Instant::now()).unwrap(),
            Outcome::Injected
        );
    }

    fn actions(host: &mut HostInput<RecordingBackend>) -> Vec<Action> {
        host.injector().backend().take()
    }

    fn down(code: Code, logical: Option<char>) -> InputEvent {
        InputEvent::KeyDown(KeyPress { code, logical })
    }

    #[test]
    fn keys_follow_the_viewers_layout_meaning() {
        let mut host = host();
        // German Z sits on the US Y position.
        send(&mut host, A, down(Code::KeyY, Some('z')));
        send(&mut host, A, InputEvent::KeyUp(Code::KeyY));
        // No hint: the US meaning of the position.
        send(&mut host, A, down(Code::KeyQ, None));
        send(&mut host, A, InputEvent::KeyUp(Code::KeyQ));
        send(&mut host, A, down(Code::F5, None));
        send(&mut host, A, InputEvent::KeyUp(Code::F5));
        assert_eq!(
            actions(&mut host),
            vec![
                Action::Key(HostKey::Char('z'), true),
                Action::Key(HostKey::Char('z'), false),
                Action::Key(HostKey::Char('q'), true),
                Action::Key(HostKey::Char('q'), false),
                Action::Key(HostKey::Code(Code::F5), true),
                Action::Key(HostKey::Code(Code::F5), false),
            ]
        );
    }

    #[test]
    fn a_key_up_releases_what_its_key_down_pressed() {
        let mut host = host();
        send(&mut host, A, down(Code::KeyY, Some('z')));
        // A repeated key-down does not press again.
        send(&mut host, A, down(Code::KeyY, Some('y')));
        send(&mut host, A, InputEvent::KeyUp(Code::KeyY));
        // A stray key-up reaches nothing.
        send(&mut host, A, InputEvent::KeyUp(Code::KeyY));
        assert_eq!(
            actions(&mut host),
            vec![
                Action::Key(HostKey::Char('z'), true),
                Action::Key(HostKey::Char('z'), false),
            ]
        );
    }

    #[test]
    fn modifier_state_presses_and_releases_modifier_keys() {
        let mut host = host();
        let mods = |shift, ctrl| {
            InputEvent::Modifiers(Modifiers {
                shift,
                ctrl,
                ..Modifiers::NONE
            })
        };
        send(&mut host, A, mods(true, false));
        send(&mut host, A, mods(true, true));
        send(&mut host, A, mods(false, true));
        send(&mut host, A, mods(false, false));
        assert_eq!(
            actions(&mut host),
            vec![
                Action::Key(HostKey::Code(Code::ShiftLeft), true),
                Action::Key(HostKey::Code(Code::ControlLeft), true),
                Action::Key(HostKey::Code(Code::ShiftLeft), false),
                Action::Key(HostKey::Code(Code::ControlLeft), false),
            ]
        );
    }

    #[test]
    fn text_is_typed_with_modifiers_lifted_and_restored() {
        let mut host = host();
        send(
            &mut host,
            A,
            InputEvent::Modifiers(Modifiers {
                shift: true,
                ..Modifiers::NONE
            }),
        );
        actions(&mut host);
        send(&mut host, B, InputEvent::Text("é".into()));
        assert_eq!(
            actions(&mut host),
            vec![
                Action::Key(HostKey::Code(Code::ShiftLeft), false),
                Action::Text("é".into()),
                Action::Key(HostKey::Code(Code::ShiftLeft), true),
            ]
        );
    }

    #[test]
    fn one_viewer_leaving_does_not_release_what_another_holds() {
        let mut host = host();
        send(&mut host, A, down(Code::ShiftLeft, None));
        send(&mut host, B, down(Code::ShiftLeft, None));
        send(&mut host, A, down(Code::KeyA, Some('a')));
        send(&mut host, A, InputEvent::ButtonDown(PointerButton::Left));
        send(&mut host, B, InputEvent::ButtonDown(PointerButton::Left));
        // Only the first holder presses at the OS.
        assert_eq!(
            actions(&mut host),
            vec![
                Action::Key(HostKey::Code(Code::ShiftLeft), true),
                Action::Key(HostKey::Char('a'), true),
                Action::Button(PointerButton::Left, true),
            ]
        );
        // A stray release from B of a key only A holds reaches nothing.
        send(&mut host, B, InputEvent::KeyUp(Code::KeyA));
        assert!(actions(&mut host).is_empty());

        let stats = host.remove_viewer(A).unwrap();
        assert_eq!(stats.admitted, 3);
        // A's own key goes; Shift and the button stay held for B.
        assert_eq!(
            actions(&mut host),
            vec![Action::Key(HostKey::Char('a'), false)]
        );
        assert_eq!(
            host.injector().held(B).keys,
            vec![Code::ShiftLeft],
            "B still holds Shift"
        );

        host.remove_viewer(B).unwrap();
        assert_eq!(
            actions(&mut host),
            vec![
                Action::Button(PointerButton::Left, false),
                Action::Key(HostKey::Code(Code::ShiftLeft), false),
            ]
        );
        assert!(matches!(
            host.handle(A, InputEvent::Text("x".into()), Instant::now()),
            Err(HostError::UnknownViewer(A))
        ));
    }

    #[test]
    fn release_all_lets_go_of_keys_before_modifiers() {
        let mut host = host();
        send(&mut host, A, down(Code::ControlLeft, None));
        send(&mut host, A, down(Code::KeyC, Some('c')));
        actions(&mut host);
        host.remove_viewer(A).unwrap();
        assert_eq!(
            actions(&mut host),
            vec![
                Action::Key(HostKey::Char('c'), false),
                Action::Key(HostKey::Code(Code::ControlLeft), false),
            ]
        );
    }

    #[test]
    fn demoting_a_viewer_releases_its_input_and_drops_the_rest() {
        let mut host = host();
        send(&mut host, A, down(Code::Enter, None));
        send(&mut host, A, InputEvent::ButtonDown(PointerButton::Right));
        actions(&mut host);
        host.set_permission(A, Permission::ViewOnly).unwrap();
        assert_eq!(
            actions(&mut host),
            vec![
                Action::Button(PointerButton::Right, false),
                Action::Key(HostKey::Code(Code::Enter), false),
            ]
        );
        let now = Instant::now();
        for event in [
            down(Code::Enter, None),
            InputEvent::KeyUp(Code::Enter),
            InputEvent::Text("rm -rf".into()),
        ] {
            assert_eq!(
                host.handle(A, event, now).unwrap(),
                Outcome::Dropped(Dropped::ViewOnly)
            );
        }
        assert!(actions(&mut host).is_empty());
        assert_eq!(host.stats(A).unwrap().dropped_view_only, 3);
        host.set_permission(A, Permission::Control).unwrap();
        send(&mut host, A, InputEvent::Text("ok".into()));
        assert_eq!(actions(&mut host), vec![Action::Text("ok".into())]);
    }

    #[test]
    fn pointer_moves_map_to_desktop_pixels_and_unknown_displays_fail() {
        let mut host = host();
        send(
            &mut host,
            A,
            InputEvent::PointerMove(PointerPosition {
                display: DisplayId::new("main"),
                x: 0.5,
                y: 0.999,
            }),
        );
        assert_eq!(actions(&mut host), vec![Action::Move(500, 499)]);
        let result = host.handle(
            A,
            InputEvent::PointerMove(PointerPosition {
                display: DisplayId::new("gone"),
                x: 0.5,
                y: 0.5,
            }),
            Instant::now(),
        );
        assert!(matches!(
            result,
            Err(HostError::Inject(InjectError::Layout(_)))
        ));
        assert!(actions(&mut host).is_empty());
    }

    #[test]
    fn wheel_fractions_add_up_and_huge_deltas_are_bounded() {
        let mut host = host();
        let wheel = |right, down| InputEvent::Wheel(WheelDelta { right, down });
        for _ in 0..4 {
            send(&mut host, A, wheel(0.0, 0.3));
        }
        send(&mut host, A, wheel(-2.0, 0.0));
        send(&mut host, A, wheel(0.0, -1e30));
        assert_eq!(
            actions(&mut host),
            vec![
                Action::Scroll(ScrollAxis::Vertical, 1),
                Action::Scroll(ScrollAxis::Horizontal, -2),
                Action::Scroll(ScrollAxis::Vertical, -crate::MAX_NOTCHES_PER_EVENT),
            ]
        );
    }

    #[test]
    fn dropping_the_injector_releases_everything() {
        let (mut host, record) = host_with_record();
        send(&mut host, A, down(Code::KeyA, Some('a')));
        send(&mut host, B, InputEvent::ButtonDown(PointerButton::Middle));
        record.take();
        drop(host);
        let mut released = record.take();
        released.sort_by_key(|a| format!("{a:?}"));
        assert_eq!(
            released,
            vec![
                Action::Button(PointerButton::Middle, false),
                Action::Key(HostKey::Char('a'), false),
            ]
        );
    }
}
