package io.qsup.qmp;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Parses qmp-shell style command lines into QMP messages.
 *
 * <p>Syntax: {@code COMMAND key=value ...}, separated by blanks. A line whose first non-blank character is {@code {}
 * is one raw JSON message, sent as written. Values:
 * <ul>
 *   <li>{@code 42}, {@code -1.5}, {@code true}, {@code false}, {@code null}: JSON numbers and literals;
 *   <li>{@code {...}} and {@code [...]}: JSON objects and arrays, which may contain blanks ({@code a={"x": 1}});
 *       invalid JSON here is an error rather than a string;
 *   <li>{@code "..."}: a JSON string with JSON escapes; use it for blanks or to keep {@code "42"} a string;
 *   <li>{@code '...'}: a string taken literally up to the next {@code '};
 *   <li>anything else, including empty: a string as written.
 * </ul>
 * Dotted keys nest: {@code a.b=1 a.c=2} gives {@code {"a": {"b": 1, "c": 2}}}. A key given twice is an error.
 *
 * <p>These are the rules when nothing is known about the command. {@link #parse} also returns where each unquoted
 * value sits, so that a schema can give it the type the command wants instead of a guessed one
 * ({@link io.qsup.qmp.schema.ArgumentTyper}).
 */
public final class QmpShellSyntax {
    private static final ObjectMapper MAPPER = QmpFraming.mapper();
    private static final ObjectReader STRICT = MAPPER.reader().with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private static final Pattern NUMBER = Pattern.compile("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?");
    private static final Pattern COMMAND = Pattern.compile("[A-Za-z0-9_.+-]+");
    private static final Pattern KEY_PART = Pattern.compile("[A-Za-z0-9_+-]+");

    private QmpShellSyntax() {}

    /** A line that does not parse; {@link #getMessage()} shows the line with a caret under the bad token. */
    public static final class ParseException extends Exception {
        private final String reason;
        private final String line;
        private final int column;

        public ParseException(String reason, String line, int column) {
            super(reason + " at column " + column + "\n" + caret(line, column));
            this.reason = reason;
            this.line = line;
            this.column = column;
        }

        /** What is wrong, without the position. */
        public String reason() {
            return reason;
        }

        /** The line as given. */
        public String line() {
            return line;
        }

        /** 1-based column of the bad token. */
        public int column() {
            return column;
        }

        /** Two lines: the input, and a caret under the bad column. */
        public String caret() {
            return caret(line, column);
        }

        private static String caret(String line, int column) {
            StringBuilder pad = new StringBuilder();
            for (int i = 0; i < column - 1 && i < line.length(); i++) {
                pad.append(line.charAt(i) == '\t' ? '\t' : ' ');
            }
            return "  " + line + "\n  " + pad + "^";
        }
    }

    private record Token(String text, int column) {}

    /**
     * A parsed line: the message with values typed by the rules above, and the unquoted values as written, by their
     * key path in {@code arguments} (["file", "filename"] for {@code file.filename=...}), for typing by a schema.
     *
     * @param message the QMP message, {@code {"execute": ..., "arguments": {...}}} or the raw JSON given
     * @param bare    unquoted values as written; empty for a raw JSON line
     */
    public record Parsed(ObjectNode message, Map<List<String>, String> bare) {
        public Parsed {
            bare = Map.copyOf(bare);
        }

        /** The command named in {@code execute} (or {@code exec-oob}). */
        public String command() {
            return message.path("execute").asText(message.path("exec-oob").asText());
        }
    }

    /** Parses one line into {@code {"execute": ..., "arguments": {...}}}, or the raw JSON message it holds. */
    public static ObjectNode parseLine(String line) throws ParseException {
        return parse(line).message();
    }

    /** As {@link #parseLine}, keeping the unquoted values as written. */
    public static Parsed parse(String line) throws ParseException {
        String trimmed = line.strip();
        if (trimmed.isEmpty()) {
            throw new ParseException("empty command line; expected COMMAND [key=value ...]", line, 1);
        }
        if (trimmed.startsWith("{")) {
            return new Parsed(parseRaw(line, line.indexOf('{')), Map.of());
        }
        return build(line, tokenize(line));
    }

    /**
     * Parses words already split by a shell (a command line's arguments); quoting was done by the shell, so a word
     * like {@code desc=a b} keeps its blank. The value rules are those of {@link #parseLine}.
     */
    public static ObjectNode parseWords(List<String> words) throws ParseException {
        return parseWordsKeepingBare(words).message();
    }

    /** As {@link #parseWords}, keeping the unquoted values as written. */
    public static Parsed parseWordsKeepingBare(List<String> words) throws ParseException {
        if (words.isEmpty()) {
            throw new ParseException("no command given; expected COMMAND [key=value ...]", "", 1);
        }
        String line = String.join(" ", words);
        if (words.get(0).stripLeading().startsWith("{")) {
            return new Parsed(parseRaw(line, line.indexOf('{')), Map.of());
        }
        List<Token> tokens = new ArrayList<>();
        int col = 1;
        for (String w : words) {
            tokens.add(new Token(w, col));
            col += w.length() + 1;
        }
        return build(line, tokens);
    }

    private static ObjectNode parseRaw(String line, int start) throws ParseException {
        JsonNode node;
        try {
            node = STRICT.readTree(line.substring(start));
        } catch (JsonProcessingException e) {
            throw new ParseException("invalid JSON: " + e.getOriginalMessage(), line, start + column(e));
        }
        if (!(node instanceof ObjectNode obj) || !(obj.path("execute").isTextual() || obj.path("exec-oob").isTextual())) {
            throw new ParseException("a raw JSON message needs an \"execute\" key naming the command", line, start + 1);
        }
        return obj;
    }

    private static int column(JsonProcessingException e) {
        JsonLocation loc = e.getLocation();
        return loc == null || loc.getColumnNr() < 1 ? 1 : loc.getColumnNr();
    }

    private static List<Token> tokenize(String line) throws ParseException {
        List<Token> tokens = new ArrayList<>();
        int n = line.length();
        int i = 0;
        while (i < n) {
            if (Character.isWhitespace(line.charAt(i))) {
                i++;
                continue;
            }
            int start = i;
            boolean inDouble = false;
            boolean inSingle = false;
            int quoteAt = -1;
            List<Integer> open = new ArrayList<>();
            while (i < n) {
                char c = line.charAt(i);
                if (inDouble) {
                    if (c == '\\') {
                        i++;
                    } else if (c == '"') {
                        inDouble = false;
                    }
                } else if (inSingle) {
                    if (c == '\'') {
                        inSingle = false;
                    }
                } else if (Character.isWhitespace(c) && open.isEmpty()) {
                    break;
                } else if (c == '"') {
                    inDouble = true;
                    quoteAt = i;
                } else if (c == '\'' && (i == start || line.charAt(i - 1) == '=')) {
                    inSingle = true;
                    quoteAt = i;
                } else if (c == '{' || c == '[') {
                    open.add(i);
                } else if ((c == '}' || c == ']') && !open.isEmpty()) {
                    open.remove(open.size() - 1);
                }
                i++;
            }
            if (inDouble || inSingle) {
                throw new ParseException("unterminated " + (inDouble ? "\"" : "'") + " quote", line, quoteAt + 1);
            }
            if (!open.isEmpty()) {
                int at = open.get(open.size() - 1);
                throw new ParseException("unclosed '" + line.charAt(at) + "'", line, at + 1);
            }
            tokens.add(new Token(line.substring(start, Math.min(i, n)), start + 1));
        }
        return tokens;
    }

    private static Parsed build(String line, List<Token> tokens) throws ParseException {
        Token cmd = tokens.get(0);
        if (cmd.text().contains("=")) {
            throw new ParseException("expected a command name first, got '" + cmd.text() + "'", line, cmd.column());
        }
        if (!COMMAND.matcher(cmd.text()).matches()) {
            throw new ParseException("bad command name '" + cmd.text() + "'", line, cmd.column());
        }
        ObjectNode args = MAPPER.createObjectNode();
        Map<List<String>, String> bare = new HashMap<>();
        for (Token t : tokens.subList(1, tokens.size())) {
            int eq = t.text().indexOf('=');
            if (eq < 0) {
                throw new ParseException("expected key=value, got '" + t.text() + "'", line, t.column());
            }
            String key = t.text().substring(0, eq);
            String text = t.text().substring(eq + 1);
            JsonNode value = value(text, line, t.column() + eq + 1);
            put(args, key, value, line, t.column());
            if (text.isEmpty() || "\"'{[".indexOf(text.charAt(0)) < 0) {
                bare.put(List.of(key.split("\\.", -1)), text);
            }
        }
        ObjectNode msg = MAPPER.createObjectNode();
        msg.put("execute", cmd.text());
        if (!args.isEmpty()) {
            msg.set("arguments", args);
        }
        return new Parsed(msg, bare);
    }

    private static void put(ObjectNode args, String key, JsonNode value, String line, int column)
            throws ParseException {
        if (key.isEmpty()) {
            throw new ParseException("missing key before '='", line, column);
        }
        String[] parts = key.split("\\.", -1);
        ObjectNode target = args;
        int col = column;
        for (int i = 0; i < parts.length; i++) {
            String part = parts[i];
            if (!KEY_PART.matcher(part).matches()) {
                throw new ParseException(part.isEmpty() ? "empty part in key '" + key + "'"
                        : "bad key '" + part + "' (letters, digits, '_', '-' and '.' for nesting)", line, col);
            }
            JsonNode existing = target.get(part);
            if (i == parts.length - 1) {
                if (existing != null) {
                    throw new ParseException("key '" + key + "' is given twice", line, column);
                }
                target.set(part, value);
            } else {
                if (existing == null) {
                    target = target.putObject(part);
                } else if (existing instanceof ObjectNode o) {
                    target = o;
                } else {
                    throw new ParseException("key '" + key + "' nests under '"
                            + String.join(".", java.util.Arrays.copyOf(parts, i + 1))
                            + "', which already has a value that is not an object", line, column);
                }
            }
            col += part.length() + 1;
        }
    }

    private static JsonNode value(String text, String line, int column) throws ParseException {
        if (text.isEmpty()) {
            return TextNode.valueOf("");
        }
        char first = text.charAt(0);
        if (first == '"') {
            int end = endOfJsonString(text);
            if (end < 0) {
                throw new ParseException("unterminated \" quote", line, column);
            }
            if (end != text.length() - 1) {
                throw new ParseException("unexpected text after the closing quote", line, column + end + 1);
            }
            try {
                return STRICT.readTree(text);
            } catch (JsonProcessingException e) {
                throw new ParseException("invalid quoted string: " + e.getOriginalMessage(), line,
                        column + column(e) - 1);
            }
        }
        if (first == '\'') {
            int end = text.indexOf('\'', 1);
            if (end < 0) {
                throw new ParseException("unterminated ' quote", line, column);
            }
            if (end != text.length() - 1) {
                throw new ParseException("unexpected text after the closing quote", line, column + end + 1);
            }
            return TextNode.valueOf(text.substring(1, end));
        }
        if (first == '{' || first == '[') {
            try {
                return STRICT.readTree(text);
            } catch (JsonProcessingException e) {
                throw new ParseException("invalid JSON value: " + e.getOriginalMessage(), line,
                        column + column(e) - 1);
            }
        }
        if (NUMBER.matcher(text).matches()) {
            try {
                return STRICT.readTree(text);
            } catch (JsonProcessingException e) {
                return TextNode.valueOf(text);
            }
        }
        return switch (text) {
            case "true" -> JsonNodeFactory.instance.booleanNode(true);
            case "false" -> JsonNodeFactory.instance.booleanNode(false);
            case "null" -> JsonNodeFactory.instance.nullNode();
            default -> TextNode.valueOf(text);
        };
    }

    private static int endOfJsonString(String text) {
        for (int i = 1; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                return i;
            }
        }
        return -1;
    }
}
