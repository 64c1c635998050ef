//! The four globals a script gets besides the ECMAScript built-ins: `app` (route
//! registration), `kv` (the project's key-value store), `console` (logging) and `env` (the
//! project's environment values, a frozen object of strings).
//!
//! They are Rust functions sharing one [`Host`] with the engine. The host holds only Rust
//! data: the functions a script registers are kept as `Persistent`s in the host's registry
//! only while the module loads, and the engine takes them out right after, so no JavaScript
//! value outlives its runtime through a Rust closure.

use std::cell::RefCell;
use std::sync::Arc;

use http::Method;
use rquickjs::object::Property;
use rquickjs::{
    Array, Ctx, Exception, Function, Object, Persistent, Result as JsResult, Value, function::Rest,
};

use super::kv::Kv;
use super::values::{clear, describe, type_name};
use super::{Env, Route};

/// The longest key `kv` accepts, in bytes.
pub(super) const KV_KEY_MAX_BYTES: usize = 256;
/// `kv.list`'s default and largest `limit`.
pub(super) const KV_LIST_DEFAULT: usize = 100;
pub(super) const KV_LIST_MAX: usize = 1000;
/// The longest `console` message, in bytes; longer ones are cut.
pub(super) const CONSOLE_MAX_BYTES: usize = 8 * 1024;

/// What the globals share with the engine.
pub(super) struct Host {
    pub project: String,
    pub kv: Arc<dyn Kv>,
    /// The project's environment values, for `env` (never logged).
    pub env: Env,
    /// The id of the request being handled, for `console`; `None` while the module loads.
    pub request_id: RefCell<Option<String>>,
    /// `Some` while the module loads: the routes registered so far.
    pub registry: RefCell<Option<Registry>>,
}

#[derive(Default)]
pub(super) struct Registry {
    pub routes: Vec<Route>,
    pub handlers: Vec<Persistent<Function<'static>>>,
}

impl Host {
    pub fn new(project: &str, kv: Arc<dyn Kv>, env: Env) -> Self {
        Host {
            project: project.to_owned(),
            kv,
            env,
            request_id: RefCell::new(None),
            registry: RefCell::new(Some(Registry::default())),
        }
    }
}

/// Defines `app`, `kv`, `console` and `env` on the global object.
pub(super) fn install<'js>(ctx: &Ctx<'js>, host: &std::rc::Rc<Host>) -> JsResult<()> {
    let globals = ctx.globals();
    globals.set("app", app(ctx, host)?)?;
    globals.set("kv", kv(ctx, host)?)?;
    globals.set("console", console(ctx, host)?)?;
    // Read-only: `env = …` throws in a module (strict code), as a change to it does.
    globals.prop("env", Property::from(env(ctx, &host.env)?).enumerable())?;
    Ok(())
}

/// `env`: a plain object holding each value as a string under its name, frozen. Each is
/// defined as the object's own property, so that a name such as `__proto__` is one too.
fn env<'js>(ctx: &Ctx<'js>, values: &Env) -> JsResult<Object<'js>> {
    let env = Object::new(ctx.clone())?;
    for (name, value) in values.iter() {
        env.prop(name, Property::from(value).enumerable())?;
    }
    let object: Object = ctx.globals().get("Object")?;
    let freeze: Function = object.get("freeze")?;
    freeze.call::<_, ()>((env.clone(),))?;
    Ok(env)
}

fn app<'js>(ctx: &Ctx<'js>, host: &std::rc::Rc<Host>) -> JsResult<Object<'js>> {
    let app = Object::new(ctx.clone())?;
    let methods = [
        ("get", Some(Method::GET)),
        ("post", Some(Method::POST)),
        ("put", Some(Method::PUT)),
        ("patch", Some(Method::PATCH)),
        ("delete", Some(Method::DELETE)),
        ("head", Some(Method::HEAD)),
        ("options", Some(Method::OPTIONS)),
        ("all", None),
    ];
    for (name, method) in methods {
        let host = host.clone();
        let register = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
            register(&ctx, &host, name, method.clone(), args.0)
        })?
        .with_name(name)?;
        app.set(name, register)?;
    }
    Ok(app)
}

/// `app.<name>(path, [options,] handler)`.
fn register<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    name: &str,
    method: Option<Method>,
    args: Vec<Value<'js>>,
) -> JsResult<()> {
    let usage = format!("app.{name}(path, [{{ summary, description, … }},] handler)");
    let (path, options, handler) = match args.as_slice() {
        [path, handler] => (path, None, handler),
        [path, options, handler] => (path, Some(options), handler),
        _ => {
            return Err(Exception::throw_type(
                ctx,
                &format!("{usage} takes 2 or 3 arguments, not {}", args.len()),
            ));
        }
    };
    let Some(path) = path.as_string().and_then(|path| path.to_string().ok()) else {
        return Err(Exception::throw_type(
            ctx,
            &format!(
                "{usage}: the path must be a string such as \"/items/{{id}}\", not {}",
                type_name(path)
            ),
        ));
    };
    if !path.starts_with('/') {
        return Err(Exception::throw_type(
            ctx,
            &format!("app.{name}({path:?}, …): the path must start with \"/\""),
        ));
    }
    let docs = match options {
        Some(options) => route_options(ctx, name, &path, options)?,
        None => None,
    };
    let Some(handler) = handler.as_function() else {
        return Err(Exception::throw_type(
            ctx,
            &format!(
                "app.{name}({path:?}, …): the handler must be a function, not {}",
                type_name(handler)
            ),
        ));
    };

    let mut registry = host.registry.borrow_mut();
    let Some(registry) = registry.as_mut() else {
        return Err(Exception::throw_message(
            ctx,
            &format!(
                "app.{name}({path:?}, …): routes can only be defined while the module loads, \
                 not from a handler"
            ),
        ));
    };
    if registry
        .routes
        .iter()
        .any(|route| route.method == method && route.path == path)
    {
        let shown = method.as_ref().map_or("ALL", Method::as_str);
        return Err(Exception::throw_message(
            ctx,
            &format!("the route {shown} {path} is defined twice"),
        ));
    }
    registry.routes.push(Route { method, path, docs });
    registry
        .handlers
        .push(Persistent::save(ctx, handler.clone()));
    Ok(())
}

/// A route's options: an object with an endpoint's docs fields (`summary`, `description`,
/// `tags`, `operation_id`, `parameters`, `request_body`, `responses`, `openapi`,
/// `validate`), read as JSON and checked as an endpoint's are.
fn route_options<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    path: &str,
    options: &Value<'js>,
) -> JsResult<Option<Box<crate::model::Docs>>> {
    let fail = |message: String| {
        Err(Exception::throw_type(
            ctx,
            &format!("app.{name}({path:?}, options, handler): {message}"),
        ))
    };
    if options.as_object().is_none() || options.is_array() || options.is_function() {
        return fail(format!(
            "options must be an object such as {{ summary, description }}, not {}",
            type_name(options)
        ));
    }
    let text = match ctx.json_stringify(options.clone())? {
        Some(text) => text.to_string()?,
        None => return fail("options must be an object that JSON can hold".into()),
    };
    let object = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(object)) => object,
        Ok(_) | Err(_) => return fail("options must be an object that JSON can hold".into()),
    };
    crate::model::Docs::from_route_options(object, path).or_else(fail)
}

fn kv<'js>(ctx: &Ctx<'js>, host: &std::rc::Rc<Host>) -> JsResult<Object<'js>> {
    let kv = Object::new(ctx.clone())?;

    let store = host.kv.clone();
    let get = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
        let key = key_argument(&ctx, "get", args.0.first())?;
        match store.get(&key) {
            Ok(Some(json)) => match ctx.json_parse(json) {
                Ok(value) => Ok(value),
                Err(error) => {
                    clear(&ctx, &error);
                    Err(Exception::throw_message(
                        &ctx,
                        &format!("kv.get({key:?}): the stored value is not valid JSON"),
                    ))
                }
            },
            Ok(None) => Ok(Value::new_undefined(ctx.clone())),
            Err(error) => Err(Exception::throw_message(&ctx, &error.to_string())),
        }
    })?
    .with_name("get")?;
    kv.set("get", get)?;

    let store = host.kv.clone();
    let set = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
        let key = key_argument(&ctx, "set", args.0.first())?;
        let value = args
            .0
            .get(1)
            .cloned()
            .unwrap_or_else(|| Value::new_undefined(ctx.clone()));
        let kind = type_name(&value);
        let Some(json) = ctx.json_stringify(value)? else {
            return Err(Exception::throw_type(
                &ctx,
                &format!(
                    "kv.set({key:?}, value): the value is {kind}, which cannot be stored as \
                     JSON (use kv.delete to remove a key)"
                ),
            ));
        };
        let json = json.to_string()?;
        store
            .set(&key, &json)
            .map_err(|error| Exception::throw_message(&ctx, &error.to_string()))
    })?
    .with_name("set")?;
    kv.set("set", set)?;

    let store = host.kv.clone();
    let delete = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
        let key = key_argument(&ctx, "delete", args.0.first())?;
        store
            .delete(&key)
            .map_err(|error| Exception::throw_message(&ctx, &error.to_string()))
    })?
    .with_name("delete")?;
    kv.set("delete", delete)?;

    let store = host.kv.clone();
    let list = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
        let prefix = match args.0.first() {
            None => String::new(),
            Some(value) if value.is_undefined() || value.is_null() => String::new(),
            Some(value) => match value.as_string() {
                Some(prefix) => prefix.to_string()?,
                None => {
                    return Err(Exception::throw_type(
                        &ctx,
                        &format!(
                            "kv.list(prefix, {{ limit }}): the prefix must be a string, not {}",
                            type_name(value)
                        ),
                    ));
                }
            },
        };
        if prefix.len() > KV_KEY_MAX_BYTES {
            return Err(Exception::throw_range(
                &ctx,
                &format!("kv.list: the prefix is longer than {KV_KEY_MAX_BYTES} bytes"),
            ));
        }
        let limit = list_limit(&ctx, args.0.get(1))?;
        let entries = store
            .list(&prefix, limit)
            .map_err(|error| Exception::throw_message(&ctx, &error.to_string()))?;
        let array = Array::new(ctx.clone())?;
        for (index, (key, json)) in entries.into_iter().enumerate() {
            let value = match ctx.json_parse(json) {
                Ok(value) => value,
                Err(error) => {
                    clear(&ctx, &error);
                    return Err(Exception::throw_message(
                        &ctx,
                        &format!("kv.list: the stored value of {key:?} is not valid JSON"),
                    ));
                }
            };
            let entry = Object::new(ctx.clone())?;
            entry.set("key", key)?;
            entry.set("value", value)?;
            array.set(index, entry)?;
        }
        Ok(array)
    })?
    .with_name("list")?;
    kv.set("list", list)?;

    Ok(kv)
}

/// A `kv` key: a non-empty string of at most [`KV_KEY_MAX_BYTES`] bytes.
fn key_argument<'js>(ctx: &Ctx<'js>, function: &str, key: Option<&Value<'js>>) -> JsResult<String> {
    let Some(key) = key.and_then(|key| key.as_string()) else {
        let kind = key.map_or("nothing", type_name);
        return Err(Exception::throw_type(
            ctx,
            &format!("kv.{function}: the key must be a string, not {kind}"),
        ));
    };
    let key = key.to_string()?;
    if key.is_empty() {
        return Err(Exception::throw_range(
            ctx,
            &format!("kv.{function}: the key must not be empty"),
        ));
    }
    if key.len() > KV_KEY_MAX_BYTES {
        return Err(Exception::throw_range(
            ctx,
            &format!(
                "kv.{function}: the key is {} bytes long; keys are at most {KV_KEY_MAX_BYTES}",
                key.len()
            ),
        ));
    }
    Ok(key)
}

/// `kv.list`'s `{ limit }`: a whole number from 1 to [`KV_LIST_MAX`], [`KV_LIST_DEFAULT`] if
/// not given.
fn list_limit<'js>(ctx: &Ctx<'js>, options: Option<&Value<'js>>) -> JsResult<usize> {
    let Some(options) = options.filter(|options| !options.is_undefined() && !options.is_null())
    else {
        return Ok(KV_LIST_DEFAULT);
    };
    let Some(object) = options.as_object() else {
        return Err(Exception::throw_type(
            ctx,
            "kv.list(prefix, { limit }): the options must be an object",
        ));
    };
    let limit: Value = object.get("limit")?;
    if limit.is_undefined() {
        return Ok(KV_LIST_DEFAULT);
    }
    match limit.as_number() {
        Some(limit) if limit.fract() == 0.0 && (1.0..=KV_LIST_MAX as f64).contains(&limit) => {
            // A whole number in range: the conversion is exact.
            Ok(limit as usize)
        }
        _ => Err(Exception::throw_range(
            ctx,
            &format!("kv.list: limit must be a whole number from 1 to {KV_LIST_MAX}"),
        )),
    }
}

fn console<'js>(ctx: &Ctx<'js>, host: &std::rc::Rc<Host>) -> JsResult<Object<'js>> {
    let console = Object::new(ctx.clone())?;
    for level in ["log", "info", "warn", "error", "debug"] {
        let host = host.clone();
        let function = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
            let message = console_message(&ctx, &args.0);
            let request_id = host.request_id.borrow();
            let request_id = request_id.as_deref();
            let project = host.project.as_str();
            match level {
                "warn" => {
                    tracing::warn!(target: "switchyard::script", project, request_id, "{message}")
                }
                "error" => {
                    tracing::error!(target: "switchyard::script", project, request_id, "{message}")
                }
                "debug" => {
                    tracing::debug!(target: "switchyard::script", project, request_id, "{message}")
                }
                _ => tracing::info!(target: "switchyard::script", project, request_id, "{message}"),
            }
        })?
        .with_name(level)?;
        console.set(level, function)?;
    }
    Ok(console)
}

/// The arguments of a `console` call joined by spaces, cut at [`CONSOLE_MAX_BYTES`].
pub(super) fn console_message<'js>(ctx: &Ctx<'js>, args: &[Value<'js>]) -> String {
    let mut message = String::new();
    for (index, value) in args.iter().enumerate() {
        if index > 0 {
            message.push(' ');
        }
        message.push_str(&describe(ctx, value));
        if message.len() > CONSOLE_MAX_BYTES {
            break;
        }
    }
    if message.len() > CONSOLE_MAX_BYTES {
        let mut end = CONSOLE_MAX_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(" … (cut at 8 KiB)");
    }
    message
}
