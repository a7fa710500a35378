//! `key = value` argument lists, parsed without stopping at the first error.
//!
//! Every macro takes its arguments as `key = value` pairs. The list is first
//! split into raw pairs (a value is every token up to the next top-level
//! comma), so one bad value never hides the errors in the others. Each value is
//! then parsed into its own type and stored in an [`Attr`] slot, which reports
//! duplicates.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::{Ident, Token};

use super::ctxt::Ctxt;

/// One `key = value` pair, with the value still as tokens.
pub(crate) struct RawArg {
    pub(crate) key: Ident,
    pub(crate) value: TokenStream,
}

impl RawArg {
    /// Parses the value as `T`, recording a spanned error on failure.
    pub(crate) fn parse<T: Parse>(&self, cx: &Ctxt) -> Option<T> {
        match syn::parse2::<T>(self.value.clone()) {
            Ok(v) => Some(v),
            Err(e) => {
                cx.syn_error(e);
                None
            }
        }
    }

    /// Parses the value with a parser function, recording a spanned error on failure.
    pub(crate) fn parse_with<T>(
        &self,
        cx: &Ctxt,
        parser: impl FnOnce(ParseStream<'_>) -> syn::Result<T>,
    ) -> Option<T> {
        match parser.parse2(self.value.clone()) {
            Ok(v) => Some(v),
            Err(e) => {
                cx.syn_error(e);
                None
            }
        }
    }
}

/// Splits `a = 1, b = [x, y], c = "z"` into raw pairs. Syntax errors are recorded
/// and the parser moves on to the next comma.
pub(crate) fn split_args(cx: &Ctxt, macro_name: &str, tokens: TokenStream) -> Vec<RawArg> {
    let parser = |input: ParseStream<'_>| -> syn::Result<Vec<RawArg>> {
        let mut args = Vec::new();
        while !input.is_empty() {
            let key = if input.peek(Ident::peek_any) {
                Some(input.call(Ident::parse_any)?)
            } else {
                let tt: TokenTree = input.parse()?;
                cx.error_spanned_by(
                    &tt,
                    format!("expected a `{macro_name}` argument name, as in `name = value`"),
                );
                None
            };
            let has_eq = input.peek(Token![=]);
            if has_eq {
                input.parse::<Token![=]>()?;
            }
            let value = take_until_comma(input)?;
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
            let Some(key) = key else { continue };
            if !has_eq {
                cx.error_spanned_by(
                    &key,
                    format!(
                        "expected `{key} = ...`: `{macro_name}` arguments are `name = value` pairs"
                    ),
                );
            } else if value.is_empty() {
                cx.error_spanned_by(&key, format!("missing value after `{key} =`"));
            } else {
                args.push(RawArg { key, value });
            }
        }
        Ok(args)
    };
    match parser.parse2(tokens) {
        Ok(args) => args,
        Err(e) => {
            cx.syn_error(e);
            Vec::new()
        }
    }
}

fn take_until_comma(input: ParseStream<'_>) -> syn::Result<TokenStream> {
    let mut value = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        let tt: TokenTree = input.parse()?;
        value.extend(std::iter::once(tt));
    }
    Ok(value)
}

/// A set-once argument slot that remembers where it was set.
pub(crate) struct Attr<T> {
    macro_name: &'static str,
    key: &'static str,
    value: Option<(Ident, T)>,
}

impl<T> Attr<T> {
    pub(crate) fn none(macro_name: &'static str, key: &'static str) -> Self {
        Attr {
            macro_name,
            key,
            value: None,
        }
    }

    /// Stores `value`, or records a duplicate-argument error at the second key.
    pub(crate) fn set(&mut self, cx: &Ctxt, key: &Ident, value: T) {
        if self.value.is_some() {
            cx.error_spanned_by(
                key,
                format!("duplicate `{}` argument `{}`", self.macro_name, self.key),
            );
        } else {
            self.value = Some((key.clone(), value));
        }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        self.value.as_ref().map(|(_, v)| v)
    }

    pub(crate) fn take(self) -> Option<T> {
        self.value.map(|(_, v)| v)
    }
}

/// Records ``unknown `m` argument `k`; expected one of: ...``, with a suggestion
/// when a valid key is one or two edits away.
pub(crate) fn unknown_arg(cx: &Ctxt, macro_name: &str, key: &Ident, valid: &[&str]) {
    let name = key.to_string();
    let list = valid
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut msg = format!("unknown `{macro_name}` argument `{name}`");
    if let Some(best) = valid
        .iter()
        .map(|k| (edit_distance(&name, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
    {
        msg.push_str(&format!("; did you mean `{best}`?"));
    }
    msg.push_str(&format!("\nexpected one of: {list}"));
    cx.error_spanned_by(key, msg);
}

/// Levenshtein distance, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `{"key": "value", ...}`: tags and field mappings.
pub(crate) struct StrMap {
    pub(crate) entries: Vec<(syn::LitStr, syn::LitStr)>,
}

impl Parse for StrMap {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        syn::braced!(content in input);
        let mut entries = Vec::new();
        while !content.is_empty() {
            let k: syn::LitStr = content.parse()?;
            content.parse::<Token![:]>()?;
            let v: syn::LitStr = content.parse()?;
            entries.push((k, v));
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(StrMap { entries })
    }
}

impl StrMap {
    /// Reports repeated keys; `what` names the argument in the message.
    pub(crate) fn check_unique(&self, cx: &Ctxt, what: &str) {
        for (i, (k, _)) in self.entries.iter().enumerate() {
            if self.entries[..i]
                .iter()
                .any(|(p, _)| p.value() == k.value())
            {
                cx.error_spanned_by(k, format!("duplicate key \"{}\" in `{what}`", k.value()));
            }
        }
    }
}

/// `[A, b::C]`: entity lists.
pub(crate) struct PathList {
    pub(crate) paths: Vec<syn::Path>,
    pub(crate) span: Span,
}

impl Parse for PathList {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        let bracket = syn::bracketed!(content in input);
        let paths = content.parse_terminated(syn::Path::parse_mod_style, Token![,])?;
        Ok(PathList {
            paths: paths.into_iter().collect(),
            span: bracket.span.join(),
        })
    }
}

/// Common descriptive arguments shared by every macro: `description`, `tags`,
/// `owner` and the `crate` path override.
pub(crate) struct Meta {
    pub(crate) description: Attr<syn::LitStr>,
    pub(crate) tags: Attr<StrMap>,
    pub(crate) owner: Attr<syn::LitStr>,
    pub(crate) krate: Attr<syn::Path>,
}

impl Meta {
    pub(crate) fn new(macro_name: &'static str) -> Self {
        Meta {
            description: Attr::none(macro_name, "description"),
            tags: Attr::none(macro_name, "tags"),
            owner: Attr::none(macro_name, "owner"),
            krate: Attr::none(macro_name, "crate"),
        }
    }

    /// Takes `arg` if it is one of the shared keys; returns `false` otherwise.
    pub(crate) fn try_set(&mut self, cx: &Ctxt, arg: &RawArg) -> bool {
        match arg.key.to_string().as_str() {
            "description" => {
                if let Some(v) = arg.parse(cx) {
                    self.description.set(cx, &arg.key, v);
                }
            }
            "tags" => {
                if let Some(v) = arg.parse::<StrMap>(cx) {
                    v.check_unique(cx, "tags");
                    self.tags.set(cx, &arg.key, v);
                }
            }
            "owner" => {
                if let Some(v) = arg.parse(cx) {
                    self.owner.set(cx, &arg.key, v);
                }
            }
            "crate" => {
                if let Some(v) = arg.parse::<syn::LitStr>(cx) {
                    match v.parse_with(syn::Path::parse_mod_style) {
                        Ok(path) => self.krate.set(cx, &arg.key, path),
                        Err(_) => cx.error_spanned_by(
                            &v,
                            "`crate` must be a path, like \"::feast_runtime\"",
                        ),
                    }
                }
            }
            _ => return false,
        }
        true
    }

    /// The path generated code uses to reach `feast_runtime`.
    pub(crate) fn krate(&self) -> TokenStream {
        match self.krate.get() {
            Some(path) => path.to_token_stream(),
            None => quote::quote!(::feast_runtime),
        }
    }
}

/// Joins the `///` doc comments of an item into one description.
pub(crate) fn doc_string(attrs: &[syn::Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}
