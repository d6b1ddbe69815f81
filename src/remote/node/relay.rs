//! The words the relay on the remote node (`templates/mix_remote_relay.erl`, the group leader of
//! every process a request starts) and the tool exchange: output in ordered pieces that we
//! acknowledge once written, reads with their prompts that we answer with lines, and the
//! terminal's size. The relay answers the remote processes' IO requests itself; none reaches us.

use erl_dist::term::{Binary, FixInteger, Pid, Term};

use super::{atom, is_atom, tuple};

/// The name the relay registers on the remote node: where acknowledgements and lines go.
pub const RELAY: &str = "mix_remote_io";

/// A message of the relay's, or an IO request that reached our pid anyway.
#[derive(Debug, PartialEq, Eq)]
pub enum FromRelay {
    /// `{mix_remote_out, Bytes}`: the next bytes of output, in order (in the encoding the
    /// function gave its standard IO: UTF-8 text, or any bytes with latin1); acknowledge them with
    /// [`ack`] once they are written.
    Out(Vec<u8>),
    /// `{mix_remote_err, Bytes}`: the next bytes the function wrote to its standard error, in
    /// order with the output (the same window: acknowledge them with [`ack`] too).
    Err(Vec<u8>),
    /// `{mix_remote_read, Prompt, Echo}`: show `prompt` (after all earlier output), then read a
    /// line (without echo when `echo` is false) and answer with [`line()`] or [`eof`].
    Read {
        /// The prompt, as bytes to show: UTF-8 text, or latin1 once the function has set its
        /// standard IO's encoding to latin1.
        prompt: Vec<u8>,
        /// False for a password.
        echo: bool,
    },
    /// `{mix_remote_value, Text}`: the value of a call that returned, as `inspect/2` shows it,
    /// sent by the boot program (not the relay) after the output before it and before the
    /// `System.at_exit/1` hooks run, when there are some (the reply still says how the run
    /// ended).
    Value(String),
    /// An `{io_request, From, ReplyAs, _}` sent to our pid (only a process whose group leader
    /// is not the relay can do that): answer it with [`refusal`].
    Stray {
        /// Who asked.
        from: Pid,
        /// What the reply must carry.
        reply_as: Term,
    },
}

impl FromRelay {
    /// Recognises a message of the relay's; `None` for anything else.
    pub fn from_term(term: &Term) -> Option<FromRelay> {
        let Term::Tuple(t) = term else { return None };
        match t.elements.as_slice() {
            [tag, Term::Binary(b)] if is_atom(tag, "mix_remote_out") => {
                Some(FromRelay::Out(b.bytes.clone()))
            }
            [tag, Term::Binary(b)] if is_atom(tag, "mix_remote_err") => {
                Some(FromRelay::Err(b.bytes.clone()))
            }
            [tag, Term::Binary(text)] if is_atom(tag, "mix_remote_value") => Some(
                FromRelay::Value(String::from_utf8_lossy(&text.bytes).into_owned()),
            ),
            [tag, Term::Binary(prompt), echo] if is_atom(tag, "mix_remote_read") => {
                Some(FromRelay::Read {
                    prompt: prompt.bytes.clone(),
                    echo: !is_atom(echo, "false"),
                })
            }
            [tag, Term::Pid(from), reply_as, _] if is_atom(tag, "io_request") => {
                Some(FromRelay::Stray {
                    from: from.clone(),
                    reply_as: reply_as.clone(),
                })
            }
            _ => None,
        }
    }
}

/// `{mix_remote_ack, N}`: `n` bytes of output are written.
pub fn ack(n: usize) -> Term {
    let n = i32::try_from(n).expect("a piece of output is at most 32 KiB");
    tuple(vec![atom("mix_remote_ack"), FixInteger::from(n).into()])
}

/// `{mix_remote_line, Bytes}`: the next input, up to and including a newline (or without one
/// when input ends there).
pub fn line(bytes: &[u8]) -> Term {
    tuple(vec![
        atom("mix_remote_line"),
        Binary::from(bytes.to_vec()).into(),
    ])
}

/// `{mix_remote_line, eof}`: input has ended.
pub fn eof() -> Term {
    tuple(vec![atom("mix_remote_line"), atom("eof")])
}

/// `{mix_remote_line, interrupted}`: Ctrl-C at the prompt; the read gets `{error, interrupted}`.
pub fn interrupted() -> Term {
    tuple(vec![atom("mix_remote_line"), atom("interrupted")])
}

/// `mix_remote_closed`: the tool's stdout has no reader any more; later output to it fails.
pub fn closed() -> Term {
    atom("mix_remote_closed")
}

/// `{mix_remote_geometry, Cols, Rows}`: the size of the local terminal.
pub fn geometry(cols: u16, rows: u16) -> Term {
    tuple(vec![
        atom("mix_remote_geometry"),
        FixInteger::from(i32::from(cols)).into(),
        FixInteger::from(i32::from(rows)).into(),
    ])
}

/// `{io_reply, ReplyAs, {error, request}}`: what a stray IO request gets.
pub fn refusal(reply_as: Term) -> Term {
    tuple(vec![
        atom("io_reply"),
        reply_as,
        tuple(vec![atom("error"), atom("request")]),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use erl_dist::term::Reference;

    fn pid() -> Pid {
        Pid::new("r@localhost".to_owned(), 1, 0, 1)
    }

    #[test]
    fn recognises_the_relays_messages_and_nothing_else() {
        let out = tuple(vec![
            atom("mix_remote_out"),
            Binary::from(&b"hi\n"[..]).into(),
        ]);
        assert_eq!(
            FromRelay::from_term(&out),
            Some(FromRelay::Out(b"hi\n".to_vec()))
        );
        let err = tuple(vec![
            atom("mix_remote_err"),
            Binary::from(&b"oops\n"[..]).into(),
        ]);
        assert_eq!(
            FromRelay::from_term(&err),
            Some(FromRelay::Err(b"oops\n".to_vec()))
        );
        let read = tuple(vec![
            atom("mix_remote_read"),
            Binary::from(&b"pw: "[..]).into(),
            atom("false"),
        ]);
        assert_eq!(
            FromRelay::from_term(&read),
            Some(FromRelay::Read {
                prompt: b"pw: ".to_vec(),
                echo: false
            })
        );
        let value = tuple(vec![
            atom("mix_remote_value"),
            Binary::from(&b"42"[..]).into(),
        ]);
        assert_eq!(
            FromRelay::from_term(&value),
            Some(FromRelay::Value("42".to_owned()))
        );
        let reference: Term = Reference {
            node: "r@localhost".into(),
            id: vec![1],
            creation: 1,
        }
        .into();
        let stray = tuple(vec![
            atom("io_request"),
            pid().into(),
            reference.clone(),
            atom("getopts"),
        ]);
        assert_eq!(
            FromRelay::from_term(&stray),
            Some(FromRelay::Stray {
                from: pid(),
                reply_as: reference
            })
        );
        // A call's reply, and output that is not a binary.
        assert_eq!(
            FromRelay::from_term(&tuple(vec![atom("x"), atom("ok")])),
            None
        );
        let list_out = tuple(vec![atom("mix_remote_out"), atom("nil")]);
        assert_eq!(FromRelay::from_term(&list_out), None);
    }
}
