//! `#[feature_service]`: a named set of features from several views.

use heck::ToSnakeCase;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Token;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;

use crate::common::attr::{self, Attr, Meta};
use crate::common::ctxt::Ctxt;
use crate::common::mention;
use crate::common::{
    UNIT_DERIVES, item_with_errors, location, missing_derives, opt_str, str_pairs,
};
use crate::entity::check_name;

const MACRO: &str = "feature_service";
const KEYS: &[&str] = &["name", "features", "description", "tags", "owner", "crate"];

/// `view` or `view[feature, ...]`.
struct Projection {
    view: syn::Path,
    features: Option<Vec<syn::Ident>>,
}

struct Projections(Vec<Projection>, Span);

impl Parse for Projections {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        let bracket = syn::bracketed!(content in input);
        let mut out = Vec::new();
        while !content.is_empty() {
            let view = content.call(syn::Path::parse_mod_style)?;
            let features = if content.peek(syn::token::Bracket) {
                let inner;
                syn::bracketed!(inner in content);
                let list = inner.parse_terminated(syn::Ident::parse, Token![,])?;
                Some(list.into_iter().collect())
            } else {
                None
            };
            out.push(Projection { view, features });
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(Projections(out, bracket.span.join()))
    }
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let input: syn::ItemStruct = match syn::parse2(item.clone()) {
        Ok(s) => s,
        Err(_) => {
            let err = syn::Error::new(
                Span::call_site(),
                "`#[feature_service]` goes on a unit struct, as in `pub struct DriverActivity;`",
            );
            return item_with_errors(item, err);
        }
    };
    let cx = Ctxt::new();
    let mut name = Attr::<syn::LitStr>::none(MACRO, "name");
    let mut features = Attr::<Projections>::none(MACRO, "features");
    let mut meta = Meta::new(MACRO);
    for arg in attr::split_args(&cx, MACRO, args) {
        if meta.try_set(&cx, &arg) {
            continue;
        }
        match arg.key.to_string().as_str() {
            "name" => {
                if let Some(v) = arg.parse(&cx) {
                    check_name(&cx, &v);
                    name.set(&cx, &arg.key, v);
                }
            }
            "features" => {
                if let Some(v) = arg.parse::<Projections>(&cx) {
                    features.set(&cx, &arg.key, v);
                }
            }
            _ => attr::unknown_arg(&cx, MACRO, &arg.key, KEYS),
        }
    }
    if !matches!(input.fields, syn::Fields::Unit) || !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.ident,
            format!(
                "`#[feature_service]` goes on a unit struct, as in `pub struct {};`",
                input.ident
            ),
        );
    }
    match features.get() {
        None => cx.error_at(Span::call_site(), "`#[feature_service]` needs `features = [...]`, as in `features = [driver_hourly_stats, driver_hourly_stats_stream[conv_percentage]]`"),
        Some(Projections(list, span)) if list.is_empty() => cx.error_at(*span, "`features` is empty: name at least one feature view"),
        Some(Projections(list, _)) => {
            for (i, p) in list.iter().enumerate() {
                if list[..i].iter().any(|q| q.view == p.view) {
                    cx.error_spanned_by(&p.view, "this view is listed twice; list its features once, as in `view[a, b]`");
                }
                for (j, f) in p.features.iter().flatten().enumerate() {
                    if p.features.iter().flatten().take(j).any(|g| g == f) {
                        cx.error_spanned_by(f, format!("feature `{f}` is listed twice"));
                    }
                }
            }
        }
    }
    if let Err(e) = cx.check() {
        let views = features
            .get()
            .into_iter()
            .flat_map(|p| &p.0)
            .map(|p| &p.view);
        let mentions = mention(views);
        let out = item_with_errors(item, e);
        return quote!(#out #mentions);
    }

    let krate = meta.krate();
    let p = quote!(#krate::__private);
    let ident = &input.ident;
    let service_name = name
        .get()
        .map_or_else(|| ident.to_string().to_snake_case(), syn::LitStr::value);
    let projections = features
        .take()
        .map(|p| p.0)
        .unwrap_or_default()
        .into_iter()
        .map(|proj| {
            let view = &proj.view;
            let view_def = quote_spanned!(view.span()=> #p::feature_view::<#view>());
            let names = proj
                .features
                .unwrap_or_default()
                .into_iter()
                .map(|f| f.to_string());
            quote!(#p::FeatureProjection { view: #view_def, features: &[#(#names),*] })
        });
    let description = opt_str(meta.description.get(), attr::doc_string(&input.attrs));
    let owner = opt_str(meta.owner.get(), None);
    let tags = str_pairs(meta.tags.get());
    let loc = location(&krate, ident.span());
    let derives = missing_derives(&input.attrs, UNIT_DERIVES);
    quote! {
        #derives
        #input

        const _: () = {
            static __FEAST_DEF: #p::FeatureServiceDef = #p::FeatureServiceDef {
                name: #service_name,
                features: &[#(#projections),*],
                description: #description,
                tags: #tags,
                owner: #owner,
                location: #loc,
            };

            impl #p::FeatureService for #ident {
                const DEF: &'static #p::FeatureServiceDef = &__FEAST_DEF;
            }

            #p::inventory::submit! {
                #p::Definition::FeatureService(&__FEAST_DEF)
            }
        };
    }
}
