-- Copyright: lambdalabs.cloud contributors
-- GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
--
-- Pandoc filter for tests/release/docsite.py: a guide of docs/ (GitHub Markdown) as an antsibull-docs extra doc.
--
-- * The first heading gets the document's label, ansible_collections.lambdalabs.cloud.docsite.<name>; every other
--   heading gets <that label>.<its GitHub anchor>, so that links to sections keep working.
-- * Links to another guide (name.md, name.md#anchor, #anchor) become :ref: links to those labels; links to
--   docs/index.md go to the collection's index; other relative links (../roles/..., ../tests/...) go to the file
--   in the repository on GitHub; absolute URLs stay as they are.
-- * YAML code blocks are highlighted as Ansible's YAML+Jinja; a code block in a language Pygments does not know
--   (the metadata "lexers" lists those it knows) is shown as plain text, so Sphinx has nothing to warn about.
--
-- Metadata (pandoc -M): docname, guides (comma-separated names of the guides in the site), lexers
-- (comma-separated), prefix (the label prefix), index_label, repository (the blob URL of the repository root).

local meta = {}

local function split(text)
  local set = {}
  for item in string.gmatch(text or "", "[^,]+") do
    set[item] = true
  end
  return set
end

local function read_meta(m)
  local function get(key)
    return m[key] and pandoc.utils.stringify(m[key]) or ""
  end
  meta.docname = get("docname")
  meta.guides = split(get("guides"))
  meta.lexers = split(get("lexers"))
  meta.prefix = get("prefix")
  meta.index_label = get("index_label")
  meta.repository = get("repository")
  meta.doc_label = meta.prefix .. meta.docname:gsub("-", "_")
  meta.first_heading = true
end

local function label_of(guide, anchor)
  local label = meta.prefix .. guide:gsub("-", "_")
  if anchor and anchor ~= "" then
    label = label .. "." .. anchor
  end
  return label
end

local function rst_text(inlines)
  -- The title of a :ref: link: plain text, without the characters that would end it early.
  local text = pandoc.utils.stringify(inlines):gsub("[<>`]", "")
  return text
end

local function ref(inlines, label)
  return pandoc.RawInline("rst", ":ref:`" .. rst_text(inlines) .. " <" .. label .. ">`")
end

local function resolve(path)
  -- A path relative to docs/ as a path from the repository root.
  local parts = {}
  for part in string.gmatch("docs/" .. path, "[^/]+") do
    if part == ".." then
      table.remove(parts)
    elseif part ~= "." then
      table.insert(parts, part)
    end
  end
  return table.concat(parts, "/")
end

local function link(el)
  local target = el.target
  if target:match("^%a[%w+.-]*:") then
    return nil -- https:, mailto:, ...
  end
  local path, anchor = target:match("^([^#]*)#?(.*)$")
  if path == "" then
    return ref(el.content, label_of(meta.docname, anchor))
  end
  local guide = path:match("^([%w_-]+)%.md$")
  if guide == "index" then
    return ref(el.content, meta.index_label)
  end
  if guide and meta.guides[guide] then
    return ref(el.content, label_of(guide, anchor))
  end
  el.target = meta.repository .. resolve(path) .. (anchor ~= "" and ("#" .. anchor) or "")
  return el
end

local function header(el)
  local label
  if meta.first_heading then
    meta.first_heading = false
    label = meta.doc_label
  else
    label = label_of(meta.docname, el.identifier)
  end
  el.identifier = ""
  -- pandoc writes the title right under this line; docsite.py puts the blank line RST needs between them.
  return { pandoc.RawBlock("rst", ".. _" .. label .. ":"), el }
end

local function code_block(el)
  local language = el.classes[1]
  if language == "yaml" then
    -- Ansible's YAML: Jinja and tags such as !vault, which a plain YAML check (rstcheck's) would refuse.
    el.classes = { "yaml+jinja" }
  elseif language and not meta.lexers[language] then
    el.classes = { "text" }
  end
  return el
end

return {
  { Meta = read_meta },
  { Link = link, Header = header, CodeBlock = code_block },
}
