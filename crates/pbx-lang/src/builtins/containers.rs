//! Arrays and dictionaries (CGPL.md §6.5).

use super::numbers::to_number;
use super::{arg, function, procedure, Builtin, Ctx};
use crate::value::ops::equals;
use crate::value::{Array, Dict, OpError, Value};

pub(super) const TABLE: &[Builtin] = &[
    function("NewArray", 0, 0, "", |_, _| Ok(Value::Array(Array::new()))),
    function("NewDictionary", 0, 0, "", |_, _| Ok(Value::Dict(Dict::new()))),
    procedure("AddElement", 2, 2, "array, element", add_element),
    procedure("RemoveElement", 2, 2, "array, index", remove_element),
    procedure("InsertElement", 3, 3, "array, index, element", insert_element),
    function("Find", 2, 2, "array, value", find),
    function("Invert", 1, 1, "array", invert),
    procedure("SetCaseSensitive", 2, 2, "dictionary, flag", set_case_sensitive),
];

fn array_arg<'a>(args: &'a [Value], name: &str) -> Result<&'a Array, OpError> {
    match arg(args, 0) {
        Value::Array(array) => Ok(array),
        other => Err(OpError::call(format!(
            "{name}: argument 1 must be an array, not {}",
            other.type_name()
        ))),
    }
}

/// An index given as a number or a numeric string.
fn index_arg(args: &[Value], position: usize, name: &str) -> Result<i64, OpError> {
    match arg(args, position) {
        Value::Num(number) => Ok(*number),
        Value::Str(bytes) if !bytes.is_empty() && bytes.as_slice().iter().all(u8::is_ascii_digit) => {
            Ok(to_number(arg(args, position)))
        }
        other => Err(OpError::call(format!(
            "{name}: the index must be a number, not {}",
            other.type_name()
        ))),
    }
}

fn add_element(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    array_arg(args, "AddElement")?.push(arg(args, 1).clone())?;
    Ok(Value::Null)
}

fn remove_element(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let array = array_arg(args, "RemoveElement")?;
    let removed = array.remove(index_arg(args, 1, "RemoveElement")?);
    drop(removed);
    Ok(Value::Null)
}

fn insert_element(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let array = array_arg(args, "InsertElement")?;
    array.insert(index_arg(args, 1, "InsertElement")?, arg(args, 2).clone())?;
    Ok(Value::Null)
}

fn find(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let array = array_arg(args, "Find")?;
    let wanted = arg(args, 1);
    for (index, item) in array.items().iter().enumerate() {
        if equals(item, wanted)? {
            return Ok(Value::Num(index as i64));
        }
    }
    Ok(Value::Num(-1))
}

fn invert(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let mut items = array_arg(args, "Invert")?.to_vec();
    items.reverse();
    Ok(Value::Array(Array::from_vec(items)))
}

fn set_case_sensitive(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    match arg(args, 0) {
        Value::Dict(dict) => {
            dict.set_ignore_case(arg(args, 1).is_null());
            Ok(Value::Null)
        }
        other => Err(OpError::call(format!(
            "SetCaseSensitive: argument 1 must be a dictionary, not {}",
            other.type_name()
        ))),
    }
}
