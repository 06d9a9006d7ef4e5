//! The lexer and recursive-descent parser of the label selector string
//! syntax, following Kubernetes' `labels.Parse` token for token so that
//! what kubectl accepts (and how it fails) is the same here.

use super::SelectorError;
use super::label::{Operator, Requirement};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    End,
    Identifier(String),
    /// `in` and `notin` are keywords only where an operator is expected;
    /// elsewhere they are ordinary identifiers.
    In,
    NotIn,
    DoesNotExist,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    OpenParen,
    CloseParen,
    Comma,
}

impl Token {
    fn literal(&self) -> &str {
        match self {
            Token::End => "",
            Token::Identifier(s) => s,
            Token::In => "in",
            Token::NotIn => "notin",
            Token::DoesNotExist => "!",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::NotEquals => "!=",
            Token::GreaterThan => ">",
            Token::LessThan => "<",
            Token::OpenParen => "(",
            Token::CloseParen => ")",
            Token::Comma => ",",
        }
    }

    /// The token as seen where values are expected: keywords are identifiers.
    fn as_value(&self) -> Token {
        match self {
            Token::In | Token::NotIn => Token::Identifier(self.literal().to_string()),
            other => other.clone(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn special_token(s: &str) -> Option<Token> {
    Some(match s {
        "!" => Token::DoesNotExist,
        "!=" => Token::NotEquals,
        "=" => Token::Equals,
        "==" => Token::DoubleEquals,
        "(" => Token::OpenParen,
        ")" => Token::CloseParen,
        "," => Token::Comma,
        ">" => Token::GreaterThan,
        "<" => Token::LessThan,
        _ => return None,
    })
}

/// Splits the selector into tokens; a run of special characters yields the
/// longest token it starts with, as the Kubernetes lexer does.
fn lex(input: &str) -> Vec<Token> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if is_special(c) {
            let mut best = None;
            let mut j = i;
            let mut buffer = String::new();
            while j < chars.len() && is_special(chars[j]) {
                buffer.push(chars[j]);
                match special_token(&buffer) {
                    Some(t) => best = Some((t, j + 1)),
                    None => break,
                }
                j += 1;
            }
            // Every single special character is a token, so `best` is set.
            if let Some((token, end)) = best {
                tokens.push(token);
                i = end;
            } else {
                i += 1;
            }
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            tokens.push(match word.as_str() {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier(word),
            });
        }
    }
    tokens
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

/// Parses a selector string into its requirements (unsorted).
pub(super) fn parse(selector: &str) -> Result<Vec<Requirement>, SelectorError> {
    let mut p = Parser {
        tokens: lex(selector),
        pos: 0,
    };
    let mut requirements = Vec::new();
    loop {
        match p.peek_value() {
            Token::Identifier(_) | Token::DoesNotExist => {
                let r = p
                    .requirement()
                    .map_err(|e| SelectorError::ParseRequirement(e.to_string()))?;
                requirements.push(r);
                match p.next_value() {
                    Token::End => return Ok(requirements),
                    Token::Comma => {
                        let t = p.peek_value();
                        if !matches!(t, Token::Identifier(_) | Token::DoesNotExist) {
                            return Err(syntax(format!(
                                "found '{}', expected: identifier after ','",
                                t.literal()
                            )));
                        }
                    }
                    t => {
                        return Err(syntax(format!(
                            "found '{}', expected: ',' or 'end of string'",
                            t.literal()
                        )));
                    }
                }
            }
            Token::End => return Ok(requirements),
            t => {
                return Err(syntax(format!(
                    "found '{}', expected: !, identifier, or 'end of string'",
                    t.literal()
                )));
            }
        }
    }
}

fn syntax(message: String) -> SelectorError {
    SelectorError::Parse(message)
}

impl Parser {
    fn peek(&self) -> Token {
        self.tokens.get(self.pos).cloned().unwrap_or(Token::End)
    }

    fn peek_value(&self) -> Token {
        self.peek().as_value()
    }

    fn next(&mut self) -> Token {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn next_value(&mut self) -> Token {
        self.next().as_value()
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (key, inferred) = self.key_and_inferred_operator()?;
        if let Some(op) = inferred {
            return Requirement::new(key, op, []);
        }
        let op = self.operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.value_set()?,
            _ => vec![self.exact_value()?],
        };
        Requirement::new(key, op, values)
    }

    /// Reads `[!]key`; a key followed by `,` or the end is an existence test.
    fn key_and_inferred_operator(&mut self) -> Result<(String, Option<Operator>), SelectorError> {
        let mut op = None;
        if self.peek() == Token::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            self.next();
        }
        let key = match self.next_value() {
            Token::Identifier(key) => key,
            t => {
                return Err(syntax(format!(
                    "found '{}', expected: identifier",
                    t.literal()
                )));
            }
        };
        if matches!(self.peek_value(), Token::End | Token::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        Ok((key, op))
    }

    fn operator(&mut self) -> Result<Operator, SelectorError> {
        Ok(match self.next() {
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            t => {
                return Err(syntax(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.literal()
                )));
            }
        })
    }

    /// `(a,b,c)`; empty members (`(a,)`, `()`) stand for the empty value.
    fn value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        let t = self.next_value();
        if t != Token::OpenParen {
            return Err(syntax(format!("found '{}', expected: '('", t.literal())));
        }
        match self.peek_value() {
            Token::Identifier(_) | Token::Comma => {
                let values = self.identifier_list()?;
                let t = self.next_value();
                if t != Token::CloseParen {
                    return Err(syntax(format!("found '{}', expected: ')'", t.literal())));
                }
                Ok(values)
            }
            Token::CloseParen => {
                self.next();
                Ok(vec![String::new()])
            }
            t => Err(syntax(format!(
                "found '{}', expected: ',', ')' or identifier",
                t.literal()
            ))),
        }
    }

    fn identifier_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut values = Vec::new();
        loop {
            match self.next_value() {
                Token::Identifier(v) => {
                    values.push(v);
                    match self.peek_value() {
                        Token::Comma => continue,
                        Token::CloseParen => return Ok(values),
                        t => {
                            return Err(syntax(format!(
                                "found '{}', expected: ',' or ')'",
                                t.literal()
                            )));
                        }
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.peek_value() {
                        Token::CloseParen => {
                            values.push(String::new());
                            return Ok(values);
                        }
                        Token::Comma => {
                            self.next();
                            values.push(String::new());
                        }
                        _ => {}
                    }
                }
                t => {
                    return Err(syntax(format!(
                        "found '{}', expected: ',', or identifier",
                        t.literal()
                    )));
                }
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>`, `<`; nothing means "".
    fn exact_value(&mut self) -> Result<String, SelectorError> {
        if matches!(self.peek_value(), Token::End | Token::Comma) {
            return Ok(String::new());
        }
        match self.next_value() {
            Token::Identifier(v) => Ok(v),
            t => Err(syntax(format!(
                "found '{}', expected: identifier",
                t.literal()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::LabelSelector;

    fn canonical(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(sel) => sel.to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn every_operator_parses() {
        assert_eq!(canonical("a=b"), "a=b");
        assert_eq!(canonical("a==b"), "a==b");
        assert_eq!(canonical("a!=b"), "a!=b");
        assert_eq!(canonical("a in (x,y)"), "a in (x,y)");
        assert_eq!(canonical("a notin (x)"), "a notin (x)");
        assert_eq!(canonical("a"), "a");
        assert_eq!(canonical("!a"), "!a");
        assert_eq!(canonical("a>1,b<2"), "a>1,b<2");
    }

    #[test]
    fn whitespace_is_ignored_between_tokens() {
        assert_eq!(
            canonical("  a = b ,  c  in  ( x , y ) , ! d "),
            "a=b,c in (x,y),!d"
        );
    }

    #[test]
    fn missing_values_mean_the_empty_string() {
        assert_eq!(canonical("a="), "a=");
        assert_eq!(canonical("a=,b"), "a=,b");
        assert_eq!(canonical("a in ()"), "a in ()");
        assert_eq!(canonical("a in (x,)"), "a in (,x)");
    }

    #[test]
    fn keywords_can_be_keys_and_values() {
        assert_eq!(canonical("in=notin"), "in=notin");
        assert_eq!(canonical("notin in (in)"), "notin in (in)");
    }

    #[test]
    fn prefixed_keys_are_accepted() {
        assert_eq!(
            canonical("app.kubernetes.io/name=web"),
            "app.kubernetes.io/name=web"
        );
    }

    #[test]
    fn syntax_errors_are_worded_as_kubernetes_words_them() {
        assert_eq!(
            canonical("a=b c"),
            "error: found 'c', expected: ',' or 'end of string'"
        );
        assert_eq!(
            canonical("a b"),
            "error: unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            canonical("a=b,"),
            "error: found '', expected: identifier after ','"
        );
        assert_eq!(
            canonical(",a"),
            "error: found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            canonical("a in b"),
            "error: unable to parse requirement: found 'b', expected: '('"
        );
        assert_eq!(
            canonical("a in (b"),
            "error: unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            canonical("a=(b)"),
            "error: unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(
            canonical("!a=b"),
            "error: found '=', expected: ',' or 'end of string'"
        );
    }

    #[test]
    fn invalid_keys_and_values_are_rejected() {
        assert!(canonical("a@b=c").starts_with(
            "error: unable to parse requirement: key: Invalid value: \"a@b\": name part"
        ));
        assert!(
            canonical("a=-b").starts_with(
                "error: unable to parse requirement: values[0]: Invalid value: \"-b\""
            )
        );
        assert!(canonical("a>b").contains("the value must be an integer"));
    }
}
