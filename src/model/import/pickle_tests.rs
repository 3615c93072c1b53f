//! The pickle machine on hand-written pickles: what `torch.save` writes (protocol 2 dicts of
//! tensor references sharing storages through the memo), nested containers, refused globals,
//! and cut input, which must be an error and never a panic.

use tch::Kind;

use super::Unpickler;
use crate::model::import::pickle_value::{PickleError, TensorRef, Value};

fn run(bytes: &[u8]) -> Result<Value, PickleError> {
    Unpickler::new(bytes, 0).run()
}

fn text(s: &str) -> Vec<u8> {
    let mut out = vec![b'X'];
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
    out
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`; the first call
/// puts the storage in memo 1, the next ones fetch it from there.
fn tensor(first: bool, offset: u8, size: (u8, u8), stride: (u8, u8)) -> Vec<u8> {
    let mut out = b"ctorch._utils\n_rebuild_tensor_v2\n(".to_vec();
    if first {
        out.push(b'(');
        out.extend(text("storage"));
        out.extend(b"ctorch\nFloatStorage\n");
        out.extend(text("0"));
        out.extend(text("cpu"));
        out.extend([b'K', 12, b't', b'Q', b'q', 1]);
    } else {
        out.extend([b'h', 1]);
    }
    out.extend([b'K', offset, b'K', size.0, b'K', size.1, 0x86]);
    out.extend([b'K', stride.0, b'K', stride.1, 0x86, 0x89]);
    out.extend(b"ccollections\nOrderedDict\n)R");
    out.extend(b"tR");
    out
}

/// `{"w": [2, 3] tensor, "b": [1, 3] view of the same storage at offset 6}`, protocol 2.
fn state_dict() -> Vec<u8> {
    let mut out = vec![0x80, 2, b'}', b'q', 0, b'('];
    out.extend(text("w"));
    out.extend(tensor(true, 0, (2, 3), (3, 1)));
    out.extend(text("b"));
    out.extend(tensor(false, 6, (1, 3), (3, 1)));
    out.extend(b"u.");
    out
}

#[test]
fn a_protocol_2_state_dict_gives_tensor_references() {
    let reference = |offset, size: Vec<i64>| {
        Value::Tensor(TensorRef {
            key: "0".into(),
            kind: Kind::Float,
            offset,
            size,
            stride: vec![3, 1],
        })
    };
    let expected = Value::Dict(vec![
        (Value::Str("w".into()), reference(0, vec![2, 3])),
        (Value::Str("b".into()), reference(6, vec![1, 3])),
    ]);
    assert_eq!(run(&state_dict()).unwrap(), expected);
}

#[test]
fn nested_lists_tuples_and_signed_integers() {
    // [1, [2, 3], (-1, -32768)]: APPENDS into the inner list, then into the outer one.
    let bytes = [
        &[
            0x80, 2, b']', b'q', 0, b'(', b'K', 1, b']', b'(', b'K', 2, b'K', 3, b'e',
        ][..],
        &[
            b'J', 0xff, 0xff, 0xff, 0xff, 0x8a, 2, 0x00, 0x80, 0x86, b'e', b'.',
        ],
    ]
    .concat();
    let expected = Value::List(vec![
        Value::Int(1),
        Value::List(vec![Value::Int(2), Value::Int(3)]),
        Value::Tuple(vec![Value::Int(-1), Value::Int(-32768)]),
    ]);
    assert_eq!(run(&bytes).unwrap(), expected);
}

#[test]
fn globals_that_run_code_are_refused_and_other_classes_stay_opaque() {
    let system = [&b"\x80\x02cos\nsystem\n"[..], &text("ls"), b"\x85R."].concat();
    let err = run(&system).unwrap_err();
    assert!(
        matches!(&err, PickleError::Refused { module, name } if module == "os" && name == "system"),
        "{err}"
    );
    // Protocol 4 names it with STACK_GLOBAL.
    let eval = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.";
    assert!(matches!(run(eval), Err(PickleError::Refused { .. })));
    // A training script's own class is kept as an opaque object.
    let config = b"\x80\x02c__main__\nConfig\n)\x81.";
    assert_eq!(
        run(config).unwrap(),
        Value::Object("__main__.Config".into())
    );
}

#[test]
fn cut_input_is_an_error_at_every_length() {
    let bytes = state_dict();
    for n in 0..bytes.len() {
        let err = run(&bytes[..n]).unwrap_err();
        assert!(
            matches!(
                err,
                PickleError::Truncated { .. } | PickleError::UnterminatedLine { .. }
            ),
            "cut at {n}: {err}"
        );
    }
}

#[test]
fn unknown_opcodes_and_malformed_stacks_are_errors() {
    assert!(matches!(
        run(b"\x80\x02\xff"),
        Err(PickleError::Opcode { op: 0xff, at: 2 })
    ));
    assert!(matches!(run(b"."), Err(PickleError::StackUnderflow)));
    assert!(matches!(run(b"K\x01t."), Err(PickleError::NoMark)));
    assert!(matches!(run(b"h\x07."), Err(PickleError::MemoUnset(7))));
}
