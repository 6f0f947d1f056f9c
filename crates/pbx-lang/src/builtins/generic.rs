//! Generic built-ins (CGPL.md §6.1) and `Vars()`.

use std::cmp::Ordering;

use super::{arg, function, procedure, Binding, Builtin, Ctx, Kind, VmFn, VARIADIC};
use crate::value::ops::compare;
use crate::value::{OpError, Value};

pub(super) const TABLE: &[Builtin] = &[
    function("Same", 2, 2, "a, b", same),
    function("Copy", 1, 1, "x", copy),
    function("Length", 1, 1, "x", length),
    function("Min", 2, 2, "a, b", min),
    function("Max", 2, 2, "a, b", max),
    procedure("Void", 1, 1, "x", void),
    function("ObjectClass", 1, 1, "x", object_class),
    function("IsString", 1, 1, "x", |_, args| {
        is(args, |v| matches!(v, Value::Str(_)))
    }),
    function("IsNumber", 1, 1, "x", |_, args| {
        is(args, |v| matches!(v, Value::Num(_)))
    }),
    function("IsDate", 1, 1, "x", |_, args| {
        is(args, |v| matches!(v, Value::Date(_)))
    }),
    function("IsIPAddress", 1, 1, "x", |_, args| {
        is(args, |v| matches!(v, Value::Ip(_)))
    }),
    function("IsData", 1, 1, "x", |_, args| {
        is(args, |v| matches!(v, Value::Data(_)))
    }),
    function("IsArray", 1, 1, "x", |_, args| {
        is(args, |v| matches!(v, Value::Array(_)))
    }),
    function("IsDictionary", 1, 1, "x", |_, args| {
        is(args, |v| matches!(v, Value::Dict(_)))
    }),
    function("IsTask", 1, 1, "x", |_, args| {
        is(args, |v| matches!(v, Value::Task(_)))
    }),
    // pbxd has no XML objects, so nothing is one.
    function("IsXML", 1, 1, "x", |_, _| Ok(Value::Null)),
    function("Vars", 0, 0, "", vars),
    Builtin {
        name: "FuncCall",
        min_args: 1,
        max_args: VARIADIC,
        signature: "name, args…",
        kind: Kind::Function,
        binding: Binding::Vm(VmFn::FuncCall),
    },
    Builtin {
        name: "ProcCall",
        min_args: 1,
        max_args: VARIADIC,
        signature: "name, args…",
        kind: Kind::Procedure,
        binding: Binding::Vm(VmFn::ProcCall),
    },
];

fn is(args: &[Value], test: fn(&Value) -> bool) -> Result<Value, OpError> {
    Ok(Value::from_bool(test(arg(args, 0))))
}

fn same(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    Ok(Value::from_bool(arg(args, 0).same(arg(args, 1))))
}

fn copy(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    arg(args, 0).deep_copy()
}

fn length(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let length = match arg(args, 0) {
        Value::Str(bytes) | Value::Data(bytes) => bytes.len(),
        Value::Array(array) => array.len(),
        Value::Dict(dict) => dict.len(),
        _ => 0,
    };
    Ok(Value::Num(length as i64))
}

fn min(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let (a, b) = (arg(args, 0), arg(args, 1));
    Ok(if compare(a, b)? == Ordering::Greater { b } else { a }.clone())
}

fn max(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let (a, b) = (arg(args, 0), arg(args, 1));
    Ok(if compare(a, b)? == Ordering::Less { b } else { a }.clone())
}

fn void(_: &mut Ctx<'_>, _: &[Value]) -> Result<Value, OpError> {
    Ok(Value::Null)
}

fn object_class(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    Ok(arg(args, 0).class_name().map_or(Value::Null, Value::str))
}

fn vars(ctx: &mut Ctx<'_>, _: &[Value]) -> Result<Value, OpError> {
    Ok(Value::Dict(ctx.vars.clone()))
}
