//! Viewer scripts for `fernsicht view --headless --script FILE`: one
//! command a line, for automation and end-to-end tests.
//!
//! ```text
//! # comments and blank lines are ignored
//! move 100 200        # pointer to host pixel (100, 200) of the shared display
//! click left          # left | right | middle
//! type Grüße!         # the rest of the line, typed as text
//! key ctrl+a          # a key combination: modifiers+key
//! wait-frames 5       # wait until 5 more pictures were decoded (the host
//!                     # sends pictures only when its screen changes)
//! screenshot out.png  # save the newest picture
//! ```

use fernsicht_input::{
    Code, DisplayId, InputEvent, KeyPress, Modifiers, PointerButton, PointerPosition,
};
use std::path::PathBuf;
use std::str::FromStr;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Move {
        x: u32,
        y: u32,
    },
    Click(PointerButton),
    Type(String),
    Key {
        modifiers: Modifiers,
        code: Code,
        logical: Option<char>,
    },
    WaitFrames(u64),
    Screenshot(PathBuf),
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("script line {line}: {message}")]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

pub fn parse(text: &str) -> Result<Vec<Step>, ScriptError> {
    let mut steps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (command, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let err = |message: String| ScriptError {
            line: i + 1,
            message,
        };
        // Comments after arguments, except for `type`, whose text is taken
        // as it is.
        let args = rest.split('#').next().unwrap_or("").trim();
        let step = match command {
            "move" => {
                let mut it = args.split_whitespace().map(u32::from_str);
                match (it.next(), it.next(), it.next()) {
                    (Some(Ok(x)), Some(Ok(y)), None) => Step::Move { x, y },
                    _ => return Err(err(format!("move wants two pixel numbers, got '{args}'"))),
                }
            }
            "click" => Step::Click(match args {
                "left" | "" => PointerButton::Left,
                "right" => PointerButton::Right,
                "middle" => PointerButton::Middle,
                other => return Err(err(format!("unknown button '{other}'"))),
            }),
            "type" => Step::Type(rest.to_owned()),
            "key" => key_combination(args).map_err(err)?,
            "wait-frames" => Step::WaitFrames(
                args.parse()
                    .map_err(|_| err(format!("wait-frames wants a number, got '{args}'")))?,
            ),
            "screenshot" if !args.is_empty() => Step::Screenshot(PathBuf::from(args)),
            "screenshot" => return Err(err("screenshot wants a file name".into())),
            other => return Err(err(format!("unknown command '{other}'"))),
        };
        steps.push(step);
    }
    Ok(steps)
}

/// `ctrl+shift+t`, `alt+f4`, `enter`.
fn key_combination(spec: &str) -> Result<Step, String> {
    let mut modifiers = Modifiers::NONE;
    let parts: Vec<&str> = spec.split('+').map(str::trim).collect();
    let Some((key, mods)) = parts.split_last() else {
        return Err("key wants a key".into());
    };
    for m in mods {
        match m.to_lowercase().as_str() {
            "ctrl" | "control" => modifiers.ctrl = true,
            "shift" => modifiers.shift = true,
            "alt" => modifiers.alt = true,
            "meta" | "super" | "win" | "cmd" => modifiers.meta = true,
            other => return Err(format!("unknown modifier '{other}'")),
        }
    }
    let (code, logical) = key_code(key).ok_or_else(|| format!("unknown key '{key}'"))?;
    Ok(Step::Key {
        modifiers,
        code,
        logical,
    })
}

fn key_code(name: &str) -> Option<(Code, Option<char>)> {
    let lower = name.to_lowercase();
    let mut chars = lower.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if c.is_ascii_lowercase() {
            let code = Code::from_str(&format!("Key{}", c.to_ascii_uppercase())).ok()?;
            return Some((code, Some(c)));
        }
        if c.is_ascii_digit() {
            return Some((Code::from_str(&format!("Digit{c}")).ok()?, Some(c)));
        }
    }
    let named = match lower.as_str() {
        "enter" | "return" => "Enter",
        "tab" => "Tab",
        "esc" | "escape" => "Escape",
        "backspace" => "Backspace",
        "delete" | "del" => "Delete",
        "space" => return Some((Code::Space, Some(' '))),
        "up" => "ArrowUp",
        "down" => "ArrowDown",
        "left" => "ArrowLeft",
        "right" => "ArrowRight",
        "home" => "Home",
        "end" => "End",
        "pageup" => "PageUp",
        "pagedown" => "PageDown",
        f if f.starts_with('f') && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) => {
            return Some((Code::from_str(&f.to_uppercase()).ok()?, None));
        }
        // W3C code names as they are ("KeyA", "NumpadEnter").
        _ => return Code::from_str(name).ok().map(|c| (c, None)),
    };
    Code::from_str(named).ok().map(|c| (c, None))
}

impl Step {
    /// The input events of a step, on the shared display `display` of
    /// `width`×`height` host pixels. Steps that are not input give none.
    pub fn events(&self, display: &DisplayId, width: u32, height: u32) -> Vec<InputEvent> {
        match self {
            Step::Move { x, y } => vec![InputEvent::PointerMove(PointerPosition {
                display: display.clone(),
                // The centre of the pixel, so it lands on exactly that pixel.
                x: (*x as f32 + 0.5) / width.max(1) as f32,
                y: (*y as f32 + 0.5) / height.max(1) as f32,
            })],
            Step::Click(b) => vec![InputEvent::ButtonDown(*b), InputEvent::ButtonUp(*b)],
            Step::Type(text) => vec![InputEvent::Text(text.clone())],
            Step::Key {
                modifiers,
                code,
                logical,
            } => {
                let mut out = Vec::new();
                if modifiers.any() {
                    out.push(InputEvent::Modifiers(*modifiers));
                }
                out.push(InputEvent::KeyDown(KeyPress {
                    code: *code,
                    logical: *logical,
                }));
                out.push(InputEvent::KeyUp(*code));
                if modifiers.any() {
                    out.push(InputEvent::Modifiers(Modifiers::NONE));
                }
                out
            }
            Step::WaitFrames(_) | Step::Screenshot(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        let steps = parse(
            "# test\n\nmove 10 20\nclick right\ntype Grüße # not a comment\nkey ctrl+shift+t\nkey enter\nwait-frames 3\nscreenshot /tmp/x.png\n",
        )
        .unwrap();
        assert_eq!(steps[0], Step::Move { x: 10, y: 20 });
        assert_eq!(steps[1], Step::Click(PointerButton::Right));
        assert_eq!(steps[2], Step::Type("Grüße # not a comment".into()));
        assert_eq!(
            steps[3],
            Step::Key {
                modifiers: Modifiers {
                    ctrl: true,
                    shift: true,
                    ..Modifiers::NONE
                },
                code: Code::KeyT,
                logical: Some('t'),
            }
        );
        assert_eq!(
            steps[4],
            Step::Key {
                modifiers: Modifiers::NONE,
                code: Code::Enter,
                logical: None
            }
        );
        assert_eq!(steps[5], Step::WaitFrames(3));
        assert_eq!(steps[6], Step::Screenshot("/tmp/x.png".into()));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("move 1\n").unwrap_err(),
            ScriptError {
                line: 1,
                message: "move wants two pixel numbers, got '1'".into()
            }
        );
        assert_eq!(parse("\nkey hyper+a").unwrap_err().line, 2);
        assert!(parse("jump 1 2").is_err());
        assert!(parse("key ctrl+nosuchkey").is_err());
    }

    #[test]
    fn moves_land_on_pixel_centres_and_keys_wrap_modifiers() {
        let d = DisplayId::new("screen");
        let ev = Step::Move { x: 0, y: 99 }.events(&d, 200, 100);
        assert_eq!(
            ev,
            vec![InputEvent::PointerMove(PointerPosition {
                display: d.clone(),
                x: 0.5 / 200.0,
                y: 99.5 / 100.0
            })]
        );
        let ev = key_combination("ctrl+a").unwrap().events(&d, 1, 1);
        assert_eq!(ev.len(), 4);
        assert_eq!(ev.last(), Some(&InputEvent::Modifiers(Modifiers::NONE)));
    }
}
