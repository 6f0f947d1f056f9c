//! Timestamps (CGPL.md §6.4). See `value::time` for the model: fields are
//! read in plain calendar arithmetic; only `LocalTime`, `GMTToLocal` and
//! `LocalToGMT` consult the task's time zone.

use super::{arg, function, number_arg, procedure, Builtin, Ctx};
use crate::value::time::{self as t, Civil, DAY_NAMES, MONTH_NAMES};
use crate::value::{OpError, Value, REMOTE_FUTURE, REMOTE_PAST};

pub(super) const TABLE: &[Builtin] = &[
    function("GMTTime", 0, 0, "", |ctx, _| Ok(Value::Date(ctx.clock.now()))),
    function("LocalTime", 0, 0, "", |ctx, _| {
        Ok(Value::Date(t::gmt_to_local(&ctx.zone.zone, ctx.clock.now())))
    }),
    function("GMTToLocal", 1, 1, "time", |ctx, args| {
        Ok(date_arg(args).map_or(Value::Null, |time| {
            Value::Date(t::gmt_to_local(&ctx.zone.zone, time))
        }))
    }),
    function("LocalToGMT", 1, 1, "time", |ctx, args| {
        Ok(date_arg(args).map_or(Value::Null, |time| {
            Value::Date(t::local_to_gmt(&ctx.zone.zone, time))
        }))
    }),
    function("Date", 1, 1, "x", date),
    function("Year", 1, 1, "time", year),
    function("Month", 1, 1, "time", month),
    function("MonthNum", 1, 1, "time", |_, args| {
        field(args, "MonthNum", |c, _| i64::from(c.month))
    }),
    function("MonthDay", 1, 1, "time", |_, args| {
        field(args, "MonthDay", |c, _| i64::from(c.day))
    }),
    function("WeekDay", 1, 1, "time", week_day),
    function("YearDay", 1, 1, "time", |_, args| {
        field(args, "YearDay", |c, _| {
            t::days_from_civil(c.year, c.month, c.day) - t::days_from_civil(c.year, 1, 1) + 1
        })
    }),
    function("TimeOfDay", 1, 1, "time", |_, args| {
        field(args, "TimeOfDay", |c, _| {
            i64::from(c.hour * 3600 + c.minute * 60 + c.second)
        })
    }),
    function("DateNumber", 1, 1, "time", |_, args| {
        field(args, "DateNumber", |_, time| time.div_euclid(86_400))
    }),
    function("DateByMonthDay", 3, 3, "year, month, day", date_by_month_day),
    function("DateByYearDay", 2, 2, "year, yearDay", date_by_year_day),
    function("GetTimeZoneName", 0, 0, "", |ctx, _| {
        Ok(ctx.zone.name.as_deref().map_or(Value::Null, Value::str))
    }),
    procedure("SetTimeZone", 1, 1, "name", set_time_zone),
];

fn date_arg(args: &[Value]) -> Option<i64> {
    match arg(args, 0) {
        Value::Date(time) => Some(*time),
        _ => None,
    }
}

fn expect_date(args: &[Value], name: &str) -> Result<i64, OpError> {
    date_arg(args).ok_or_else(|| {
        OpError::call(format!(
            "{name}: argument 1 must be a timestamp, not {}",
            arg(args, 0).type_name()
        ))
    })
}

/// A calendar field of a timestamp; null for the remote past and future.
fn field(args: &[Value], name: &str, read: fn(Civil, i64) -> i64) -> Result<Value, OpError> {
    let time = expect_date(args, name)?;
    Ok(t::civil(time).map_or(Value::Null, |civil| Value::Num(read(civil, time))))
}

fn date(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    Ok(match arg(args, 0) {
        Value::Date(_) => arg(args, 0).clone(),
        Value::Num(0) => Value::Date(REMOTE_PAST),
        Value::Num(day) if *day < 0 => Value::Date(REMOTE_FUTURE),
        Value::Num(day) => day
            .checked_mul(86_400)
            .filter(|time| t::civil(*time).is_some_and(|c| c.year <= 9999))
            .map_or(Value::Date(REMOTE_FUTURE), Value::Date),
        Value::Str(bytes) => std::str::from_utf8(bytes.as_slice())
            .ok()
            .and_then(t::parse)
            .map_or(Value::Null, Value::Date),
        _ => Value::Null,
    })
}

fn year(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let time = expect_date(args, "Year")?;
    Ok(Value::Num(match time {
        REMOTE_PAST => 0,
        REMOTE_FUTURE => 9999,
        time => t::civil(time).map_or(0, |civil| civil.year),
    }))
}

fn month(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let month = match arg(args, 0) {
        Value::Num(number @ 1..=12) => *number as usize,
        Value::Num(_) => return Ok(Value::Null),
        _ => match t::civil(expect_date(args, "Month")?) {
            Some(civil) => civil.month as usize,
            None => return Ok(Value::Null),
        },
    };
    Ok(Value::str(MONTH_NAMES[month - 1]))
}

fn week_day(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let time = expect_date(args, "WeekDay")?;
    if t::civil(time).is_none() {
        return Ok(Value::Null);
    }
    Ok(Value::str(DAY_NAMES[t::weekday(time) as usize]))
}

fn date_by_month_day(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let year = number_arg(args, 0, "DateByMonthDay")?;
    let month = number_arg(args, 1, "DateByMonthDay")?;
    let day = number_arg(args, 2, "DateByMonthDay")?;
    let (Ok(month), Ok(day)) = (u32::try_from(month), u32::try_from(day)) else {
        return Ok(Value::Null);
    };
    let civil = Civil {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
    };
    Ok(t::from_civil(civil).map_or(Value::Null, Value::Date))
}

fn date_by_year_day(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let year = number_arg(args, 0, "DateByYearDay")?;
    let year_day = number_arg(args, 1, "DateByYearDay")?;
    if !(0..=9999).contains(&year) {
        return Ok(Value::Null);
    }
    let days_in_year = if t::is_leap_year(year) { 366 } else { 365 };
    if !(1..=days_in_year).contains(&year_day) {
        return Ok(Value::Null);
    }
    let days = t::days_from_civil(year, 1, 1) + year_day - 1;
    Ok(Value::Date(days * 86_400))
}

fn set_time_zone(ctx: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let name = arg(args, 0)
        .as_str_bytes()
        .and_then(|bytes| std::str::from_utf8(bytes).ok());
    match name.and_then(|name| jiff::tz::TimeZone::get(name).ok().map(|zone| (name, zone))) {
        Some((name, zone)) => {
            ctx.zone.name = Some(name.to_string());
            ctx.zone.zone = zone;
        }
        // An unknown name selects no zone: the server's offset applies.
        None => {
            ctx.zone.name = None;
            ctx.zone.zone = ctx.zone.server.clone();
        }
    }
    Ok(Value::Null)
}
