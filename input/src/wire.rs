//! The byte form of an [`InputEvent`] inside the encrypted session.
//!
//! postcard keeps a pointer move at about a dozen bytes; the encoding lives
//! here so that viewer and host cannot disagree on it.

use crate::event::InputEvent;

/// An event could not be turned into bytes or back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes are not an input event (damaged, truncated, or from an
    /// incompatible version).
    #[error("the peer sent a malformed input event: {0}")]
    Malformed(#[source] postcard::Error),
    /// Serialisation failed (should not happen for this model).
    #[error("an input event could not be encoded: {0}")]
    Encode(#[source] postcard::Error),
}

impl InputEvent {
    /// The event's wire bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        postcard::to_allocvec(self).map_err(WireError::Encode)
    }

    /// Parses one event from its wire bytes; trailing bytes are an error, so a
    /// frame carries exactly one event.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let (event, rest) =
            postcard::take_from_bytes::<Self>(bytes).map_err(WireError::Malformed)?;
        if rest.is_empty() {
            Ok(event)
        } else {
            Err(WireError::Malformed(
                postcard::Error::DeserializeBadEncoding,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        Code, DisplayId, KeyPress, Modifiers, PointerButton, PointerPosition, WheelDelta,
    };

    #[test]
    fn every_kind_of_event_survives_the_wire() {
        let events = vec![
            InputEvent::PointerMove(PointerPosition {
                display: DisplayId::new("DP-1"),
                x: 0.25,
                y: 0.999,
            }),
            InputEvent::ButtonDown(PointerButton::Right),
            InputEvent::ButtonUp(PointerButton::Forward),
            InputEvent::Wheel(WheelDelta {
                right: -1.5,
                down: 3.0,
            }),
            InputEvent::KeyDown(KeyPress {
                code: Code::KeyY,
                logical: Some('z'),
            }),
            InputEvent::KeyUp(Code::F12),
            InputEvent::Text("ßé€😀".to_owned()),
            InputEvent::Modifiers(Modifiers {
                shift: true,
                ctrl: false,
                alt: true,
                meta: false,
            }),
        ];
        for event in events {
            let bytes = event.to_bytes().unwrap();
            assert_eq!(InputEvent::from_bytes(&bytes).unwrap(), event);
        }
    }

    #[test]
    fn a_pointer_move_is_small() {
        let bytes = InputEvent::PointerMove(PointerPosition {
            display: DisplayId::new("0"),
            x: 0.5,
            y: 0.5,
        })
        .to_bytes()
        .unwrap();
        assert!(bytes.len() <= 12, "{} bytes", bytes.len());
    }

    #[test]
    fn damaged_bytes_are_rejected() {
        let mut bytes = InputEvent::Text("hallo".to_owned()).to_bytes().unwrap();
        assert!(InputEvent::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        bytes.push(0);
        assert!(InputEvent::from_bytes(&bytes).is_err());
        assert!(InputEvent::from_bytes(&[0xff, 0xff, 0xff]).is_err());
    }
}
