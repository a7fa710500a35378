//! `aggregations = [Aggregation(column = "...", function = "...",
//! time_window = "...", slide_interval = "...", name = "..."), ...]`: parsed,
//! then checked against the view's schema (the columns its function
//! outputs) with a span on each mistake.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Token};

use crate::common::ctxt::Ctxt;
use crate::common::dtype::{FeastType, Field};
use crate::common::duration::parse_duration;

/// The largest `n` of `last(n)`; the runtime's `MAX_LAST_N`.
const MAX_LAST_N: u64 = 1000;

const FUNCTIONS: &str =
    "sum, count, mean (or avg), min, max, std, std_pop, var, var_pop, last(n), last_distinct(n)";

/// One `key = "value"` of an `Aggregation(...)`.
struct KeyValue {
    key: Ident,
    value: LitStr,
}

/// `Aggregation(key = "value", ...)` as written.
pub(crate) struct AggregationSyntax {
    span: Span,
    args: Vec<KeyValue>,
}

/// `[Aggregation(...), ...]`.
pub(crate) struct AggregationList {
    pub(crate) items: Vec<AggregationSyntax>,
    pub(crate) span: Span,
}

impl Parse for AggregationList {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        let bracket = syn::bracketed!(content in input);
        let mut items = Vec::new();
        while !content.is_empty() {
            let head: Ident = content.parse()?;
            if head != "Aggregation" {
                return Err(syn::Error::new(
                    head.span(),
                    format!(
                        "expected `Aggregation(column = \"...\", function = \"...\", time_window = \"...\")`, found `{head}`"
                    ),
                ));
            }
            let inner;
            let paren = syn::parenthesized!(inner in content);
            let mut args = Vec::new();
            while !inner.is_empty() {
                let key: Ident = inner.parse()?;
                inner.parse::<Token![=]>()?;
                let value: LitStr = inner.parse()?;
                args.push(KeyValue { key, value });
                if inner.is_empty() {
                    break;
                }
                inner.parse::<Token![,]>()?;
            }
            items.push(AggregationSyntax {
                span: paren.span.join(),
                args,
            });
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(AggregationList {
            items,
            span: bracket.span.join(),
        })
    }
}

/// What an aggregation computes, as the runtime's `AggFunction` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Sum,
    Count,
    Mean,
    Min,
    Max,
    Std,
    StdPop,
    Var,
    VarPop,
    Last(u16),
    LastDistinct(u16),
}

impl Function {
    /// Parses `sum`, `avg`, `last(3)`...; the name part of a default
    /// feature name beside it.
    fn parse(text: &str) -> Result<(Function, String), String> {
        let t = text.trim().to_ascii_lowercase();
        let simple = match t.as_str() {
            "sum" => Some(Function::Sum),
            "count" => Some(Function::Count),
            "mean" | "avg" => Some(Function::Mean),
            "min" => Some(Function::Min),
            "max" => Some(Function::Max),
            "std" | "stddev" | "stddev_samp" => Some(Function::Std),
            "std_pop" | "stddev_pop" => Some(Function::StdPop),
            "var" | "variance" | "var_samp" => Some(Function::Var),
            "var_pop" => Some(Function::VarPop),
            _ => None,
        };
        if let Some(f) = simple {
            return Ok((f, t));
        }
        for (prefix, make) in [
            (
                "last_distinct(",
                Function::LastDistinct as fn(u16) -> Function,
            ),
            ("last(", Function::Last as fn(u16) -> Function),
        ] {
            if let Some(arg) = t.strip_prefix(prefix).and_then(|r| r.strip_suffix(')')) {
                let n: u64 = arg.trim().parse().map_err(|_| {
                    format!(
                        "`{text}`: the number of values must be a whole number, as in `{prefix}3)`"
                    )
                })?;
                if n == 0 || n > MAX_LAST_N {
                    return Err(format!(
                        "`{text}`: keep between 1 and {MAX_LAST_N} values (each is stored in every tile of the window)"
                    ));
                }
                let base = prefix.trim_end_matches('(');
                return Ok((make(n as u16), format!("{base}_{n}")));
            }
        }
        Err(format!(
            "unknown aggregation function `{text}`; expected one of {FUNCTIONS}"
        ))
    }

    fn accepts(self, ty: &FeastType) -> bool {
        let numeric = matches!(
            ty,
            FeastType::Int32 | FeastType::Int64 | FeastType::Float32 | FeastType::Float64
        );
        match self {
            Function::Sum
            | Function::Mean
            | Function::Std
            | Function::StdPop
            | Function::Var
            | Function::VarPop => numeric,
            Function::Min | Function::Max => numeric || *ty == FeastType::UnixTimestamp,
            Function::Count | Function::Last(_) | Function::LastDistinct(_) => {
                !matches!(ty, FeastType::Array(_))
            }
        }
    }

    fn needs(self) -> &'static str {
        match self {
            Function::Min | Function::Max => "a numeric or UnixTimestamp column",
            Function::Count | Function::Last(_) | Function::LastDistinct(_) => "a scalar column",
            _ => "a numeric column (Int32, Int64, Float32 or Float64)",
        }
    }

    fn output(self, input: &FeastType) -> FeastType {
        match self {
            Function::Count => FeastType::Int64,
            Function::Mean
            | Function::Std
            | Function::StdPop
            | Function::Var
            | Function::VarPop => FeastType::Float64,
            Function::Sum => match input {
                FeastType::Int32 | FeastType::Int64 => FeastType::Int64,
                _ => FeastType::Float64,
            },
            Function::Min | Function::Max => input.clone(),
            Function::Last(_) | Function::LastDistinct(_) => {
                FeastType::Array(Box::new(input.clone()))
            }
        }
    }

    fn to_runtime(self, krate: &TokenStream) -> TokenStream {
        let f = quote!(#krate::__private::AggFunction);
        match self {
            Function::Sum => quote!(#f::Sum),
            Function::Count => quote!(#f::Count),
            Function::Mean => quote!(#f::Mean),
            Function::Min => quote!(#f::Min),
            Function::Max => quote!(#f::Max),
            Function::Std => quote!(#f::Std),
            Function::StdPop => quote!(#f::StdPop),
            Function::Var => quote!(#f::Var),
            Function::VarPop => quote!(#f::VarPop),
            Function::Last(n) => quote!(#f::Last(#n)),
            Function::LastDistinct(n) => quote!(#f::LastDistinct(#n)),
        }
    }
}

/// Where an aggregated column's type comes from.
#[derive(Clone)]
enum Input {
    /// Declared in the view's `schema`: known now.
    Declared(FeastType),
    /// Not declared: looked up in the source's columns when the generated
    /// constant is evaluated, and checked there.
    Source(Ident),
}

/// A checked aggregation.
pub(crate) struct Aggregation {
    pub(crate) name: String,
    pub(crate) span: Span,
    column: String,
    column_span: Span,
    input: Input,
    function: Function,
    function_text: String,
    window_seconds: u64,
    slide_seconds: u64,
}

/// A feature of the served view: a declared field, or an aggregation.
#[derive(Clone)]
pub(crate) struct Feature {
    pub(crate) name: String,
    pub(crate) span: Span,
    ty: FeatureType,
}

#[derive(Clone)]
enum FeatureType {
    Known(FeastType),
    /// An aggregation over a source column: its type is computed by the
    /// compiler from the column's.
    FromSource(Function, Ident),
}

impl From<Field> for Feature {
    fn from(f: Field) -> Feature {
        Feature {
            name: f.name,
            span: f.span,
            ty: FeatureType::Known(f.ty),
        }
    }
}

impl Feature {
    /// The Rust type of the row field; `()` for a type only the checks of a
    /// failed expansion would compute.
    pub(crate) fn rust_type(&self, krate: &TokenStream, dummy: bool) -> TokenStream {
        match &self.ty {
            FeatureType::Known(t) => t.rust_type(krate),
            FeatureType::FromSource(..) if dummy => quote!(()),
            FeatureType::FromSource(function, column) => {
                let p = quote!(#krate::__private);
                let f = function.to_runtime(krate);
                quote!(<#p::Typed<{ #p::type_code(#f.output(#column)) }> as #p::RustOf>::T)
            }
        }
    }

    /// The runtime's `FeastType` of the feature.
    pub(crate) fn to_runtime(&self, krate: &TokenStream) -> TokenStream {
        match &self.ty {
            FeatureType::Known(t) => t.to_runtime(krate),
            FeatureType::FromSource(function, column) => {
                let f = function.to_runtime(krate);
                quote!(#f.output(#column))
            }
        }
    }
}

impl Aggregation {
    /// The feature it gives, as a schema field of the served view.
    pub(crate) fn feature(&self) -> Feature {
        Feature {
            name: self.name.clone(),
            span: self.span,
            ty: match &self.input {
                Input::Declared(t) => FeatureType::Known(self.function.output(t)),
                Input::Source(c) => FeatureType::FromSource(self.function, c.clone()),
            },
        }
    }

    /// For an aggregation over a source column, the constant holding the
    /// column's type and the check that the function fits it, evaluated by
    /// the compiler at the column's span: `source` is the view's source
    /// definition as a constant expression.
    pub(crate) fn source_column(&self, krate: &TokenStream, source: &TokenStream) -> TokenStream {
        let Input::Source(ident) = &self.input else {
            return TokenStream::new();
        };
        let p = quote!(#krate::__private);
        let column = &self.column;
        let missing = format!(
            "column `{column}` is in neither the view's `schema` nor its source's columns; declare it in `schema` if the function computes it"
        );
        let misfit = format!(
            "`{}` needs {}, and column `{column}` of the source is not one",
            self.function_text,
            self.function.needs()
        );
        let f = self.function.to_runtime(krate);
        quote::quote_spanned! {self.column_span=>
            #[doc(hidden)]
            #[allow(non_upper_case_globals)]
            const #ident: #p::FeastType = match #p::input_column(#source, #column) {
                ::core::option::Option::Some(t) => t,
                ::core::option::Option::None => ::core::panic!(#missing),
            };
            const _: () = ::core::assert!(#f.accepts(#ident), #misfit);
        }
    }

    /// The runtime's `AggregationDef`.
    pub(crate) fn to_runtime(&self, krate: &TokenStream) -> TokenStream {
        let (name, column) = (&self.name, &self.column);
        let input = match &self.input {
            Input::Declared(t) => t.to_runtime(krate),
            Input::Source(c) => quote!(#c),
        };
        let function = self.function.to_runtime(krate);
        let (w, s) = (self.window_seconds, self.slide_seconds);
        quote!(#krate::__private::AggregationDef {
            name: #name,
            column: #column,
            input: #input,
            function: #function,
            window_seconds: #w,
            slide_seconds: #s,
        })
    }
}

/// Checks each aggregation against `schema` (the columns the view function
/// outputs); the ones that pass. A column not in `schema` is the source's,
/// checked when the compiler evaluates the constant named after `view`.
pub(crate) fn check(
    cx: &Ctxt,
    list: &AggregationList,
    schema: &[Field],
    view: &str,
) -> Vec<Aggregation> {
    if list.items.is_empty() {
        cx.error_at(
            list.span,
            "`aggregations` is empty: list at least one `Aggregation(...)`, or leave the argument out",
        );
    }
    let mut out: Vec<Aggregation> = Vec::new();
    for (i, item) in list.items.iter().enumerate() {
        let Some(agg) = check_one(cx, item, schema, &format!("__feast_{view}_column_{i}")) else {
            continue;
        };
        if out.iter().any(|o| o.name == agg.name) {
            cx.error_at(
                agg.span,
                format!(
                    "two aggregations give the feature `{}`; set `name = \"...\"` on one of them",
                    agg.name
                ),
            );
            continue;
        }
        out.push(agg);
    }
    out
}

fn check_one(
    cx: &Ctxt,
    item: &AggregationSyntax,
    schema: &[Field],
    source_const: &str,
) -> Option<Aggregation> {
    let get = |key: &str| -> Option<&LitStr> {
        let mut found: Option<&LitStr> = None;
        for kv in item.args.iter().filter(|kv| kv.key == key) {
            if found.is_some() {
                cx.error_spanned_by(&kv.key, format!("`{key}` is given twice"));
            }
            found = Some(&kv.value);
        }
        found
    };
    let column = get("column");
    let function = get("function");
    let window = get("time_window");
    let slide = get("slide_interval");
    let name = get("name");
    for kv in &item.args {
        let k = kv.key.to_string();
        if ![
            "column",
            "function",
            "time_window",
            "slide_interval",
            "name",
        ]
        .contains(&k.as_str())
        {
            cx.error_spanned_by(
                &kv.key,
                format!("unknown `Aggregation` argument `{k}`; expected column, function, time_window, slide_interval or name"),
            );
        }
    }
    let (Some(column), Some(function), Some(window)) = (column, function, window) else {
        cx.error_at(
            item.span,
            "an `Aggregation` needs `column`, `function` and `time_window`, as in `Aggregation(column = \"trips\", function = \"sum\", time_window = \"1h\")`",
        );
        return None;
    };
    let (function_v, function_name) = match Function::parse(&function.value()) {
        Ok(f) => f,
        Err(msg) => {
            cx.error_spanned_by(function, msg);
            return None;
        }
    };
    let column_name = column.value();
    let input = match schema.iter().find(|f| f.name == column_name) {
        Some(field) => {
            if !function_v.accepts(&field.ty) {
                cx.error_spanned_by(
                    function,
                    format!(
                        "`{}` needs {}, but `{column_name}` is {}",
                        function.value(),
                        function_v.needs(),
                        type_name(&field.ty)
                    ),
                );
                return None;
            }
            Input::Declared(field.ty.clone())
        }
        None => Input::Source(Ident::new(source_const, column.span())),
    };
    let window_seconds = duration(cx, window)?;
    let slide_seconds = match slide {
        Some(s) => duration(cx, s)?,
        None => window_seconds,
    };
    if window_seconds == 0 {
        cx.error_spanned_by(window, "`time_window` must be longer than zero");
        return None;
    }
    if slide_seconds == 0 || window_seconds % slide_seconds != 0 {
        cx.error_spanned_by(
            slide.unwrap_or(window),
            format!(
                "`time_window` ({window_seconds} s) must be a positive multiple of `slide_interval` ({slide_seconds} s): the window is a whole number of hops"
            ),
        );
        return None;
    }
    let name_v = match name {
        Some(n) => {
            let v = n.value();
            if v.is_empty()
                || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || v.starts_with(|c: char| c.is_ascii_digit())
            {
                cx.error_spanned_by(n, format!("`{v}` is not a feature name: use letters, digits and `_`, not starting with a digit"));
                return None;
            }
            v
        }
        None => format!("{function_name}_{column_name}"),
    };
    Some(Aggregation {
        name: name_v,
        span: name.map_or(item.span, LitStr::span),
        column: column_name,
        column_span: column.span(),
        input,
        function: function_v,
        function_text: function.value(),
        window_seconds,
        slide_seconds,
    })
}

fn duration(cx: &Ctxt, lit: &LitStr) -> Option<u64> {
    match parse_duration(&lit.value()) {
        Ok(s) => Some(s),
        Err(msg) => {
            cx.error_spanned_by(lit, msg);
            None
        }
    }
}

fn type_name(ty: &FeastType) -> String {
    match ty {
        FeastType::Array(inner) => format!("Array({})", type_name(inner)),
        other => format!("{other:?}"),
    }
}
