//! Arguments of the feature-view macros and the checked view they describe.

use heck::ToSnakeCase;
use proc_macro2::Span;
use syn::spanned::Spanned;

use super::Kind;
use super::aggregation::{self, Aggregation, AggregationList, Feature};
use crate::common::attr::{self, Attr, Meta, PathList};
use crate::common::ctxt::Ctxt;
use crate::common::dtype::{Field, SchemaSyntax};
use crate::common::duration::parse_duration;
use crate::entity::check_name;

const KEYS: &[&str] = &[
    "name",
    "entities",
    "source",
    "schema",
    "ttl",
    "timestamp_field",
    "online",
    "offline",
    "description",
    "tags",
    "owner",
    "aggregations",
    "crate",
];

pub(crate) struct ViewArgs {
    pub(crate) name: Attr<syn::LitStr>,
    pub(crate) entities: Attr<PathList>,
    pub(crate) source: Attr<syn::Path>,
    pub(crate) schema: Attr<Vec<Field>>,
    pub(crate) ttl: Attr<u64>,
    pub(crate) timestamp_field: Attr<syn::LitStr>,
    pub(crate) online: Attr<syn::LitBool>,
    pub(crate) offline: Attr<syn::LitBool>,
    pub(crate) aggregations: Attr<AggregationList>,
    /// Where an empty `schema = []` was written: an error unless the view
    /// aggregates source columns only.
    empty_schema: Option<Span>,
    pub(crate) meta: Meta,
}

impl ViewArgs {
    pub(crate) fn parse(cx: &Ctxt, kind: Kind, tokens: proc_macro2::TokenStream) -> ViewArgs {
        let m = kind.macro_name();
        let mut a = ViewArgs {
            name: Attr::none(m, "name"),
            entities: Attr::none(m, "entities"),
            source: Attr::none(m, "source"),
            schema: Attr::none(m, "schema"),
            ttl: Attr::none(m, "ttl"),
            timestamp_field: Attr::none(m, "timestamp_field"),
            online: Attr::none(m, "online"),
            offline: Attr::none(m, "offline"),
            aggregations: Attr::none(m, "aggregations"),
            empty_schema: None,
            meta: Meta::new(m),
        };
        for arg in attr::split_args(cx, m, tokens) {
            if a.meta.try_set(cx, &arg) {
                continue;
            }
            match arg.key.to_string().as_str() {
                "name" => {
                    if let Some(v) = arg.parse(cx) {
                        check_name(cx, &v);
                        a.name.set(cx, &arg.key, v);
                    }
                }
                "entities" => {
                    if let Some(v) = arg.parse::<PathList>(cx) {
                        a.entities.set(cx, &arg.key, v);
                    }
                }
                "source" => {
                    if let Some(v) = arg.parse(cx) {
                        a.source.set(cx, &arg.key, v);
                    }
                }
                "schema" => {
                    if let Some(v) = arg.parse::<SchemaSyntax>(cx) {
                        if v.fields.is_empty() {
                            a.empty_schema = Some(v.span);
                        }
                        let fields = v.resolve(cx);
                        a.schema.set(cx, &arg.key, fields);
                    }
                }
                "ttl" => {
                    if let Some(lit) = arg.parse::<syn::LitStr>(cx) {
                        match parse_duration(&lit.value()) {
                            Ok(secs) => a.ttl.set(cx, &arg.key, secs),
                            Err(msg) => cx.error_spanned_by(&lit, msg),
                        }
                    }
                }
                "timestamp_field" => {
                    if let Some(v) = arg.parse(cx) {
                        a.timestamp_field.set(cx, &arg.key, v);
                    }
                }
                "online" => {
                    if let Some(v) = crate::common::parse_bool(cx, &arg) {
                        a.online.set(cx, &arg.key, v);
                    }
                }
                "offline" => {
                    if let Some(v) = crate::common::parse_bool(cx, &arg) {
                        a.offline.set(cx, &arg.key, v);
                    }
                }
                "aggregations" => {
                    if let Some(v) = arg.parse::<AggregationList>(cx) {
                        a.aggregations.set(cx, &arg.key, v);
                    }
                }
                "mode" | "udf" | "udf_string" => cx.error_spanned_by(
                    &arg.key,
                    format!("`{}` is not an argument here: the function under the attribute is the transformation, in Rust over a Polars DataFrame", arg.key),
                ),
                "batch_source" | "stream_source" => cx.error_spanned_by(
                    &arg.key,
                    format!("`{}` is not a view argument: use `source = ...`; a stream source names its own batch source", arg.key),
                ),
                _ => attr::unknown_arg(cx, m, &arg.key, KEYS),
            }
        }
        a
    }
}

/// One entity of a view: the path the user wrote and the row field it becomes.
pub(crate) struct EntityRef {
    pub(crate) path: syn::Path,
    pub(crate) field: syn::Ident,
}

/// A checked view definition, borrowing the user's function for spans.
pub(crate) struct View<'a> {
    pub(crate) kind: Kind,
    pub(crate) func: &'a syn::ItemFn,
    pub(crate) name: String,
    pub(crate) entities: Vec<EntityRef>,
    pub(crate) args: ViewArgs,
    /// The checked aggregations; empty for a plain view.
    pub(crate) aggregations: Vec<Aggregation>,
    /// The features the view serves: the aggregations' for an aggregated
    /// view, else its schema's.
    pub(crate) features: Vec<Feature>,
    /// The argument and return types of the function, when it has that shape.
    pub(crate) signature: Option<(&'a syn::Type, &'a syn::Type)>,
}

impl<'a> View<'a> {
    pub(crate) fn from_ast(
        cx: &Ctxt,
        kind: Kind,
        args: ViewArgs,
        func: &'a syn::ItemFn,
    ) -> View<'a> {
        let m = kind.macro_name();
        let signature = check_signature(cx, func);
        let name = args
            .name
            .get()
            .map_or_else(|| func.sig.ident.to_string(), syn::LitStr::value);
        if args.name.get().is_none() {
            check_fn_name(cx, &func.sig.ident);
        }

        let mut entities: Vec<EntityRef> = Vec::new();
        match args.entities.get() {
            None => cx.error_at(
                Span::call_site(),
                format!("`#[{m}]` needs `entities = [...]`: the entities whose join keys identify a row, as in `entities = [Driver]`"),
            ),
            Some(list) if list.paths.is_empty() => cx.error_at(
                list.span,
                "`entities` is empty: name at least one entity, as in `entities = [Driver]`",
            ),
            Some(list) => {
                for path in &list.paths {
                    let Some(last) = path.segments.last() else { continue };
                    let field = syn::Ident::new(&last.ident.to_string().to_snake_case(), last.ident.span());
                    if entities.iter().any(|e| e.field == field) {
                        cx.error_spanned_by(path, format!("entity `{}` is listed twice", quote::quote!(#path)));
                        continue;
                    }
                    entities.push(EntityRef { path: path.clone(), field });
                }
            }
        }
        if args.source.get().is_none() {
            let example = match kind {
                Kind::Stream => {
                    "source = DriverStatsStream` (a `#[kinesis_source]` or `#[push_source]`)"
                }
                Kind::Batch => "source = DriverStatsBatch` (a `#[file_source]`)",
            };
            cx.error_at(
                Span::call_site(),
                format!("`#[{m}]` needs `source`, as in `{example}"),
            );
        }
        if args.schema.get().is_none() {
            cx.error_at(
                Span::call_site(),
                format!("`#[{m}]` needs `schema = [...]`: the features the view outputs, as in `schema = [conv_rate: Float32]`"),
            );
        }
        if let Some(span) = args
            .empty_schema
            .filter(|_| args.aggregations.get().is_none())
        {
            cx.error_at(span, "`schema` is empty: declare the features the function outputs, as in `[conv_rate: Float32]`");
        }
        let aggregations = match (args.aggregations.get(), args.schema.get()) {
            (Some(list), Some(schema)) => aggregation::check(
                cx,
                list,
                schema,
                func.sig.ident.to_string().trim_start_matches("r#"),
            ),
            _ => Vec::new(),
        };
        let features: Vec<Feature> = if args.aggregations.get().is_some() {
            aggregations.iter().map(Aggregation::feature).collect()
        } else {
            args.schema
                .get()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(Feature::from)
                .collect()
        };
        for f in &features {
            if f.name == "event_timestamp" || entities.iter().any(|e| e.field == f.name) {
                cx.error_at(
                    f.span,
                    format!("feature `{}` clashes with a field of the generated row struct (entities and `event_timestamp`); rename the feature", f.name),
                );
            }
        }
        if let Some(lit) = args
            .timestamp_field
            .get()
            .filter(|l| l.value().trim().is_empty())
        {
            cx.error_spanned_by(lit, "`timestamp_field` is empty");
        }
        View {
            kind,
            func,
            name,
            entities,
            args,
            aggregations,
            features,
            signature,
        }
    }

    /// The columns the function declares it outputs.
    pub(crate) fn schema(&self) -> &[Field] {
        self.args.schema.get().map_or(&[], Vec::as_slice)
    }
}

fn check_fn_name(cx: &Ctxt, ident: &syn::Ident) {
    let s = ident.to_string();
    if s.starts_with("r#") {
        cx.error_spanned_by(
            ident,
            "a raw identifier is not a valid view name; set `name = \"...\"`",
        );
    }
}

/// The shape `fn name(df: DataFrame) -> R`; the types themselves are checked by
/// rustc through spanned trait bounds in the expansion.
fn check_signature<'a>(cx: &Ctxt, func: &'a syn::ItemFn) -> Option<(&'a syn::Type, &'a syn::Type)> {
    let sig = &func.sig;
    let shape =
        "a feature view function has the shape `fn name(df: DataFrame) -> PolarsResult<DataFrame>`";
    let mut ok = true;
    if let Some(token) = &sig.asyncness {
        cx.error_spanned_by(token, format!("a feature view function cannot be `async`: it runs on each micro-batch on a worker thread\n{shape}"));
        ok = false;
    }
    if let Some(token) = &sig.unsafety {
        cx.error_spanned_by(
            token,
            format!("a feature view function cannot be `unsafe`\n{shape}"),
        );
        ok = false;
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(
            abi,
            format!("a feature view function cannot have an `extern` ABI\n{shape}"),
        );
        ok = false;
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(&sig.generics, format!("a feature view function cannot be generic: the runtime calls it with a concrete `DataFrame`\n{shape}"));
        ok = false;
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(v, shape);
        ok = false;
    }
    let arg_ty = match sig.inputs.len() {
        1 => match sig.inputs.first() {
            Some(syn::FnArg::Typed(pat)) => Some(&*pat.ty),
            Some(receiver) => {
                cx.error_spanned_by(
                    receiver,
                    format!("a feature view function takes no `self`\n{shape}"),
                );
                None
            }
            None => None,
        },
        n => {
            let what = if n == 0 {
                "no arguments".to_owned()
            } else {
                format!("{n} arguments")
            };
            let span = if n == 0 {
                sig.paren_token.span.join()
            } else {
                sig.inputs.span()
            };
            cx.error_at(span, format!("a feature view function takes one argument, the micro-batch `DataFrame`, but this one takes {what}\n{shape}"));
            None
        }
    };
    let ret_ty = match &sig.output {
        syn::ReturnType::Type(_, ty) => Some(&**ty),
        syn::ReturnType::Default => {
            cx.error_spanned_by(&sig.ident, format!("a feature view function returns the transformed frame, but this one returns nothing\n{shape}"));
            None
        }
    };
    match (ok, arg_ty, ret_ty) {
        (true, Some(a), Some(r)) => Some((a, r)),
        _ => None,
    }
}
