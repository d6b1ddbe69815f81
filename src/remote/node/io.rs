//! The IO server behind our pid: remote processes whose group leader we are send their output
//! here (Erlang I/O protocol), and it streams to the local terminal as it happens.
//!
//! Each request is answered only after its text is written, so output never overtakes the call's
//! result, and a process sends its next request only after the reply, so its output stays in
//! order. Requests are served concurrently: a `{put_chars, _, M, F, A}` request waits on a remote
//! call, and whatever `M:F` itself prints must not queue behind it.

use std::sync::Arc;

use erl_dist::term::{List, Pid, Term};
use tokio::sync::mpsc;

use super::{Node, atom, is_atom, tuple};

/// One `{io_request, From, ReplyAs, Request}` message.
#[derive(Debug)]
pub struct IoRequest {
    from: Pid,
    reply_as: Term,
    request: Term,
}

impl IoRequest {
    /// Recognises an IO request message.
    pub fn from_term(term: &Term) -> Option<IoRequest> {
        let Term::Tuple(t) = term else { return None };
        match t.elements.as_slice() {
            [tag, Term::Pid(from), reply_as, request] if is_atom(tag, "io_request") => {
                Some(IoRequest {
                    from: from.clone(),
                    reply_as: reply_as.clone(),
                    request: request.clone(),
                })
            }
            _ => None,
        }
    }
}

/// Where served text goes.
pub type Output = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// Serves IO requests until the connection ends, writing text to `output`.
pub async fn serve(
    node: Arc<Node>,
    mut requests: mpsc::UnboundedReceiver<IoRequest>,
    output: Output,
) {
    while let Some(req) = requests.recv().await {
        let node = Arc::clone(&node);
        let output = Arc::clone(&output);
        tokio::spawn(async move {
            let reply = answer(&node, &req.request, &output).await;
            let msg = tuple(vec![atom("io_reply"), req.reply_as, reply]);
            let _ = node.send(req.from, msg);
        });
    }
}

async fn answer(node: &Node, request: &Term, output: &Output) -> Term {
    if is_atom(request, "getopts") {
        let opts = vec![
            tuple(vec![atom("binary"), atom("false")]),
            tuple(vec![atom("encoding"), atom("unicode")]),
        ];
        return List::from(opts).into();
    }
    let Term::Tuple(t) = request else {
        return error("request");
    };
    match t.elements.as_slice() {
        [tag, enc, chars] if is_atom(tag, "put_chars") => put(latin1(enc), chars, output),
        [tag, chars] if is_atom(tag, "put_chars") => put(true, chars, output),
        [tag, enc, m, f, a] if is_atom(tag, "put_chars") => {
            put_mfa(node, latin1(enc), m, f, a, output).await
        }
        [tag, m, f, a] if is_atom(tag, "put_chars") => put_mfa(node, true, m, f, a, output).await,
        [tag, Term::List(list)] if is_atom(tag, "requests") => {
            let mut last = atom("ok");
            for req in &list.elements {
                last = Box::pin(answer(node, req, output)).await;
                if !is_atom(&last, "ok") {
                    break;
                }
            }
            last
        }
        // A remote run has no stdin: show the prompt, as a terminal would, then end of file.
        // Requests come with an encoding (`{get_line, unicode, Prompt}`) or without (`{get_line,
        // Prompt}`); `get_password` has no prompt.
        [tag, rest @ ..] if is_input(tag) => {
            let prompt = match rest {
                [enc, prompt, ..] if is_atom(enc, "unicode") || is_atom(enc, "latin1") => {
                    Some(prompt)
                }
                [prompt, ..] if !is_atom(tag, "get_password") => Some(prompt),
                _ => None,
            };
            if let Some(prompt) = prompt {
                show_prompt(prompt, output);
            }
            atom("eof")
        }
        _ => error("enotsup"),
    }
}

fn is_input(tag: &Term) -> bool {
    ["get_chars", "get_line", "get_until", "get_password"]
        .iter()
        .any(|name| is_atom(tag, name))
}

fn show_prompt(prompt: &Term, output: &Output) {
    match prompt {
        Term::Atom(a) => output(a.name.as_bytes()),
        chars => {
            if let Some(text) = chardata_to_utf8(chars, false) {
                output(&text);
            }
        }
    }
}

fn latin1(encoding: &Term) -> bool {
    is_atom(encoding, "latin1")
}

fn error(reason: &str) -> Term {
    tuple(vec![atom("error"), atom(reason)])
}

fn put(latin1: bool, chars: &Term, output: &Output) -> Term {
    match chardata_to_utf8(chars, latin1) {
        Some(text) => {
            output(&text);
            atom("ok")
        }
        None => error("put_chars"),
    }
}

/// `{put_chars, Enc, M, F, A}` (what `io:format/2` sends): the text is `apply(M, F, A)` on the
/// remote, so we ask the remote to compute it, then write it.
async fn put_mfa(node: &Node, latin1: bool, m: &Term, f: &Term, a: &Term, output: &Output) -> Term {
    let (Term::Atom(m), Term::Atom(f), Term::List(a)) = (m, f, a) else {
        return error("put_chars");
    };
    let args: List = a.clone();
    match node.call(&m.name, &f.name, args.elements, None).await {
        Ok(chars) => put(latin1, &chars, output),
        Err(_) => error("put_chars"),
    }
}

/// Flattens Erlang chardata (binaries, code points, nested and improper lists) into UTF-8.
/// With `latin1`, binaries hold Latin-1 bytes; otherwise UTF-8. `None` if it is not chardata.
fn chardata_to_utf8(data: &Term, latin1: bool) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![data];
    while let Some(term) = stack.pop() {
        match term {
            Term::Binary(b) if latin1 => {
                out.extend(b.bytes.iter().flat_map(|&c| utf8(char::from(c))));
            }
            Term::Binary(b) => out.extend_from_slice(&b.bytes),
            Term::ByteList(l) => out.extend(l.bytes.iter().flat_map(|&c| utf8(char::from(c)))),
            Term::FixInteger(i) => {
                let c = u32::try_from(i.value).ok().and_then(char::from_u32)?;
                if latin1 && u32::from(c) > 255 {
                    return None;
                }
                out.extend(utf8(c));
            }
            Term::List(l) => stack.extend(l.elements.iter().rev()),
            Term::ImproperList(l) => {
                stack.push(&l.last);
                stack.extend(l.elements.iter().rev());
            }
            _ => return None,
        }
    }
    Some(out)
}

fn utf8(c: char) -> impl Iterator<Item = u8> {
    let mut buf = [0; 4];
    let len = c.encode_utf8(&mut buf).len();
    buf.into_iter().take(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use erl_dist::term::{Binary, FixInteger, ImproperList};

    fn int(v: i32) -> Term {
        FixInteger::from(v).into()
    }

    #[test]
    fn flattens_iolists_in_order() {
        let data: Term = List::from(vec![
            Binary::from("héllo ".as_bytes()).into(),
            List::from(vec![int('w' as i32), int('ö' as i32)]).into(),
            // STRING_EXT, as OTP encodes a short list of small integers.
            Term::decode(&[131, 107, 0, 3, b'r', b'l', b'd'][..]).unwrap(),
            ImproperList::from((vec![int('!' as i32)], Binary::from(&b"\n"[..]).into())).into(),
        ])
        .into();
        assert_eq!(
            chardata_to_utf8(&data, false).unwrap(),
            "héllo wörld!\n".as_bytes()
        );
    }

    #[test]
    fn latin1_binaries_are_transcoded_and_non_chardata_refused() {
        let data: Term = Binary::from(&[0x63, 0x61, 0x66, 0xe9][..]).into();
        assert_eq!(chardata_to_utf8(&data, true).unwrap(), "café".as_bytes());
        assert!(chardata_to_utf8(&atom("ok"), false).is_none());
        assert!(chardata_to_utf8(&int(-1), false).is_none());
        assert!(chardata_to_utf8(&int(0x2603), true).is_none());
    }
}
