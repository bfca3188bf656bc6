"""The chat-template checker: templates shaped like the ones real tokenizer configs ship pass with
zero findings; SSTI payloads (CVE-2024-34359, the 2025 vLLM variant, CVE-2026-5760, threats.md
§2 "Other formats" and §4.8) are blocked; nothing is ever rendered.

The benign templates below were written for these tests in the style of Hugging Face
`tokenizer_config.json` templates; none is a copy of a published one.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.scan import templates
from proxy.scan.report import Finding, Severity
from proxy.scan.templates import check_template

WHERE = "metadata tokenizer.chat_template"

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

ALTERNATING_INST = """
{%- if messages[0]['role'] == 'system' -%}
    {%- set loop_messages = messages[1:] -%}
    {%- set system_message = messages[0]['content'] -%}
{%- else -%}
    {%- set loop_messages = messages -%}
    {%- set system_message = false -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception('Roles have to go user, assistant, user, assistant, ...') }}
    {%- endif -%}
    {%- if loop.index0 == 0 and system_message != false -%}
        {%- set text = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] -%}
    {%- else -%}
        {%- set text = message['content'] -%}
    {%- endif -%}
    {%- if message['role'] == 'user' -%}
        {{ bos_token + '[INST] ' + text.strip() + ' [/INST]' }}
    {%- elif message['role'] == 'assistant' -%}
        {{ ' ' + text.strip() + ' ' + eos_token }}
    {%- endif -%}
{%- endfor -%}
"""

DATED_TOOLS = """
{{- bos_token }}
{%- if not date_string is defined %}
    {%- set date_string = strftime_now("%d %B %Y") %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_text = messages[0]['content'] | trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_text = "" %}
{%- endif %}
{{- "<|header|>system<|end_header|>\\n\\n" }}
{{- "Knowledge cutoff: March 2024\\nToday: " + date_string + "\\n\\n" }}
{%- if tools is not none %}
    {{- "You may call these functions. Reply with JSON {\\"name\\": ..., \\"arguments\\": ...}" }}
    {%- for tool in tools %}
        {{- tool | tojson(indent=2) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_text }}
{{- "<|eot|>" }}
{%- for message in messages %}
    {%- if message.role == 'tool' or message.role == 'ipython' %}
        {{- "<|header|>ipython<|end_header|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls %}
        {%- set call = message.tool_calls[0].function %}
        {{- "<|header|>assistant<|end_header|>\\n\\n" }}
        {{- '{"name": "' + call.name + '", "parameters": ' + call.arguments | tojson + '}' }}
    {%- else %}
        {{- "<|header|>" + message['role'] + "<|end_header|>\\n\\n" + message['content'] | trim }}
    {%- endif %}
    {{- "<|eot|>" }}
{%- endfor %}
{%- if add_generation_prompt %}{{- "<|header|>assistant<|end_header|>\\n\\n" }}{%- endif %}
"""

THINKING_TOOLS = """
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}
    {{- "# Tools\\n\\nFunction signatures inside <tools></tools>:\\n<tools>" }}
    {%- for tool in tools %}{{- "\\n" }}{{- tool | tojson }}{%- endfor %}
    {{- "\\n</tools><|im_end|>\\n" }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string
          and not (message.content.startswith('<tool_response>')
                   and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- set content = message.content if message.content is string else '' %}
    {%- if message.role == "user" or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning = '' %}
        {%- if '</think>' in content %}
            {%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1] %}
            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index and (loop.last or reasoning) %}
            {{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n' }}
        {%- else %}
            {{- '<|im_start|>assistant\\n' }}
        {%- endif %}
        {{- content.lstrip('\\n') }}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if tool_call.function %}{%- set tool_call = tool_call.function %}{%- endif %}
                {{- '<tool_call>\\n{"name": "' + tool_call.name + '", "arguments": ' }}
                {%- if tool_call.arguments is string %}{{- tool_call.arguments }}
                {%- else %}{{- tool_call.arguments | tojson }}{%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' + content + '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""

TURNS_WITH_IMAGES = """
{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'assistant') != (loop.index0 % 2 == 1) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}
"""

BRACKET_TOOLS = """
{%- set user_messages = messages | selectattr("role", "equalto", "user") | list %}
{{- bos_token }}
{%- for message in messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {{- tool | tojson }}
                {%- if not loop.last %}{{- ", " }}{%- endif %}
            {%- endfor %}
            {{- "][/AVAILABLE_TOOLS]" }}
        {%- endif %}
        {{- "[INST] " + message["content"] + "[/INST]" }}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.id is not string or tool_call.id | length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings of length 9!") }}
            {%- endif %}
            {{- {"name": tool_call.function.name, "arguments": tool_call.function.arguments,
                 "id": tool_call.id} | tojson }}
            {%- if not loop.last %}{{- ", " }}{%- else %}{{- "]" + eos_token }}{%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"] | trim + eos_token }}
    {%- elif message["role"] == "tool" %}
        {{- '[TOOL_RESULTS] {"content": ' + message.content | string + ', "call_id": "' }}
        {{- message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user, assistant and tool roles are supported!") }}
    {%- endif %}
{%- endfor %}
"""

MACRO_PARTS = """
{%- macro render_content(content) -%}
    {%- if content is string -%}{{ content }}
    {%- else -%}
        {%- for part in content if part.type == 'text' -%}{{ part.text }}{%- endfor -%}
    {%- endif -%}
{%- endmacro -%}
{%- macro header(role, first=false) -%}
    {{ '<|' + role + '|>' + ('' if first else '\\n') }}
{%- endmacro -%}
{%- for message in messages -%}
    {{ header(message['role'], first=loop.first) }}{{ render_content(message['content']) }}
    {{- '<|end|>' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ header('assistant') }}{%- else -%}{{ eos_token }}{%- endif -%}
"""

NAMESPACE_FLAGS = """
{%- if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}
{%- set ns = namespace(is_first=false, is_tool=false, system_prompt='', seen_system=false) %}
{%- for message in messages %}
    {%- if message['role'] == 'system' %}
        {%- if ns.seen_system %}{% set ns.system_prompt = ns.system_prompt + '\\n\\n' %}{% endif %}
        {%- set ns.system_prompt = ns.system_prompt + message['content'] %}
        {%- set ns.seen_system = true %}
    {%- endif %}
{%- endfor %}
{{- bos_token }}{{- ns.system_prompt }}
{%- for message in messages %}
    {%- if message['role'] == 'user' %}
        {%- set ns.is_tool = false -%}
        {{- '<|User|>' + message['content'] }}
    {%- elif message['role'] == 'assistant' and message['content'] is not none %}
        {%- set content = message['content'] %}
        {%- if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}
        {{- '<|Assistant|>' + content + '<|end_of_sentence|>' }}
    {%- elif message['role'] == 'tool' %}
        {%- set ns.is_tool = true -%}
        {{- '<|tool_output_begin|>' + message['content'] + '<|tool_output_end|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt and not ns.is_tool %}{{- '<|Assistant|><think>\\n' }}{%- endif %}
"""

GROUNDED_DOCUMENTS = """
{{- bos_token }}
{%- if documents %}
    {{- '<|SYSTEM|>## Documents\\n' }}
    {%- for document in documents %}
        {{- 'Document: ' }}{{ loop.index0 }}{{ '\\n' }}
        {%- for key, value in document.items() %}{{ key }}: {{ value }}{{ '\\n' }}{%- endfor %}
    {%- endfor %}
{%- endif %}
{%- if tools %}
    {%- for tool in tools %}
        {{- 'def ' + tool.name + '(' }}
        {%- for param_name, param in tool.parameter_definitions.items() %}
            {{- param_name + ': ' + param.type }}{% if not loop.last %}{{ ', ' }}{% endif %}
        {%- endfor %}
        {{- ') -> List[Dict]:\\n    # ' + tool.description + '\\n' }}
    {%- endfor %}
{%- endif %}
{%- for message in messages %}
    {{- '<|' + message.role | upper + '|>' + message.content + '<|END|>' }}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|CHATBOT|>' }}{% endif %}
"""

INDEXED_LOOKUPS = """
{%- set role_map = {'user': 'Human', 'assistant': 'Assistant', 'system': 'System'} %}
{%- for i in range(messages | length) %}
    {%- set m = messages[i] %}
    {%- if i > 0 and messages[i - 1]['role'] == m['role'] %}
        {{- raise_exception('two turns in a row from ' + m['role']) }}
    {%- endif %}
    {%- if m['role'] == 'system' and not loop.first %}{% continue %}{% endif %}
    {{- role_map[m['role']] + ': ' }}
    {%- if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}{% endgeneration %}
    {%- else %}{{ m['content'] }}{%- endif %}
    {{- '\\n\\n' }}
{%- endfor %}
{%- for tool in tools or [] %}
    {%- set props = tool['function']['parameters']['properties'] %}
    {%- for name in props %}{{ name }}={{ props[name]['type'] }};{% endfor %}
    {%- if loop.index >= 8 %}{% break %}{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}
"""

TYPED_SIGNATURES = """
{%- macro to_python_type(spec) -%}
    {%- set type_map = {"string": "str", "number": "float", "integer": "int", "boolean": "bool"} -%}
    {%- if spec.type in type_map -%}{{- type_map[spec.type] -}}
    {%- elif spec.type == "array" -%}{{- "list[" + to_python_type(spec["items"]) + "]" -}}
    {%- elif spec.type == "object" -%}{{- "dict" -}}
    {%- else -%}{{- "Any" -}}{%- endif -%}
{%- endmacro -%}
{%- for tool in tools -%}
    {%- set fn = tool.function if tool.function is defined else tool -%}
    {{- "def " + fn.name + "(" -}}
    {%- for arg_name, arg in fn.parameters.properties | items -%}
        {{- arg_name + ": " + to_python_type(arg) -}}{%- if not loop.last -%}, {% endif -%}
    {%- endfor -%}
    {{- ")\\n" -}}
{%- endfor -%}
{%- for message in messages -%}
    {{- "<|im_start|>" + message.role + "\\n" + (message.content or "") + "<|im_end|>\\n" -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- "<|im_start|>assistant\\n" -}}{%- endif -%}
"""

WITH_AND_FILTERS = """
{%- with sep = '\\n\\n', persona = (messages | selectattr('role', 'equalto', 'system')
                                     | map(attribute='content') | join(' ')) %}
{{- persona | default('You are a helpful assistant.', true) + sep }}
{%- endwith %}
{%- for message in messages | rejectattr('role', 'equalto', 'system') %}
    {{- message.role | capitalize + ': ' + message.content | trim | replace('\\r', '') }}
    {%- if loop.length > 1 and not loop.last %}{{ '\\n' }}{% endif %}
    {%- for call in message.tool_calls | default([]) -%}
        {{ '\\n<call>' ~ call.function.name ~ ' ' ~ call.function.arguments | tojson ~ '</call>' }}
    {%- endfor -%}
{%- endfor %}
{%- if add_generation_prompt %}{{ '\\nAssistant: ' }}{% endif %}
"""

SHADOWED_ROOT_NAMES = (
    "{% for request in requests %}{{ request.url }}{% endfor %}"
    "{% set config = {'sep': '\\n'} %}{{ config.sep }}"
    "{% set c = cycler('odd', 'even') %}{% for m in messages %}{{ c.next() }}{% endfor %}"
    "{% for i in range(3) %}{{ i }}{% endfor %}{{ dict(a=1).items() | list }}"
)

BENIGN = {
    "chatml": CHATML,
    "alternating-inst": ALTERNATING_INST,
    "dated-tools": DATED_TOOLS,
    "thinking-tools": THINKING_TOOLS,
    "turns-with-images": TURNS_WITH_IMAGES,
    "bracket-tools": BRACKET_TOOLS,
    "macro-parts": MACRO_PARTS,
    "namespace-flags": NAMESPACE_FLAGS,
    "grounded-documents": GROUNDED_DOCUMENTS,
    "indexed-lookups": INDEXED_LOOKUPS,
    "typed-signatures": TYPED_SIGNATURES,
    "with-and-filters": WITH_AND_FILTERS,
    "shadowed-root-names": SHADOWED_ROOT_NAMES,
}

# (payload, source). Every one of these reaches Python internals when rendered without a sandbox.
CVE_LLAMA_CPP = "CVE-2024-34359 (llama-cpp-python GGUF chat template SSTI)"
VLLM_2025 = "vLLM chat template SSTI variant (2025, threats.md §2)"
CVE_SGLANG = "CVE-2026-5760 (SGLang rerank endpoint, CERT/CC VU#915947)"
THREATS_48 = "threats.md §4.8 (attr() filters, string-built dunders, walks from SSTI roots)"

SSTI_PAYLOADS = [
    ("{{ self.__init__.__globals__ }}", CVE_LLAMA_CPP),
    ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", CVE_LLAMA_CPP),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", VLLM_2025),
    ("{{ x|attr('__class__') }}", THREATS_48),
    ("{{ x|attr(name) }}", THREATS_48),
    ("{{ lipsum.__globals__['os'] }}", CVE_SGLANG),
    ("{{ joiner.__init__ }}", THREATS_48),
    ("{{ namespace.__init__ }}", THREATS_48),
    ("{% set a = '_' ~ '_class_' ~ '_' %}{{ x[a] }}", THREATS_48),
    ("{{ lipsum['__globals__']['os'] }}", CVE_SGLANG),
    ("{{ self._TemplateReference__context.cycler }}", CVE_LLAMA_CPP),
    ("{{ (x|map('lower')).gi_frame.f_builtins['eval']('1') }}", THREATS_48),
    ("{{ x|map(attribute='__class__')|list }}", THREATS_48),
    ("{{ x|map('attr', '__class__')|list }}", THREATS_48),
    ("{{ x|selectattr('y.__class__')|list }}", THREATS_48),
    ("{{ '{0.__class__.__init__.__globals__}'.format(x) }}", THREATS_48),
    ("{% set u = '_' %}{{ messages[0]['content'][u ~ u ~ 'class' ~ u ~ u] }}", THREATS_48),
    ("{{ x[['__cla', 'ss__'] | join] }}", THREATS_48),
    ("{{ x['__ssalc__' | reverse] }}", THREATS_48),
    ("{{ x['_-class-_' | replace('-', '_')] }}", THREATS_48),
    ("{{ x|attr('_' ~ '_class__') }}", THREATS_48),
    ("{% set ns = namespace(k=1) %}{% set ns.__class__ = 1 %}", THREATS_48),
    ("{{ range.__init__ }}", THREATS_48),
    ("{{ dict.fromkeys }}", THREATS_48),
    ("{{ config.items() }}", THREATS_48),
    ("{{ request.application }}", THREATS_48),
    ("{{ url_for('x') }}", THREATS_48),
    ("{{ get_flashed_messages() }}", THREATS_48),
    ("{{ x.mro() }}", THREATS_48),
    ("{{ lipsum|attr('x') }}", THREATS_48),
    (
        "{% for message in messages %}{{ message['content'] }}{% endfor %}"
        "{{ cycler.__init__.__globals__.os.popen('touch /tmp/pwned').read() }}",
        CVE_LLAMA_CPP,
    ),
]

# Keys built at render time that the folding cannot spell out: blocked as dynamic attributes.
DYNAMIC_PAYLOADS = [
    ("{% set ns = namespace(k='') %}{% set ns.k = '%c%c' %}{{ x[ns.k % (95, 95)] }}", THREATS_48),
    ("{{ x[bos_token] }}", THREATS_48),
    (
        "{% macro m(k='content') %}{{ x[k] }}{% endmacro %}{{ m('__class__') }}",
        THREATS_48,
    ),
    ("{% set k = (lipsum|string)[22] %}{{ x[k ~ k ~ 'class' ~ k ~ k] }}", THREATS_48),
    ("{% set k %}__class__{% endset %}{{ x[k] }}", THREATS_48),
    ("{% for k in ['_'] %}{{ x[k ~ k ~ 'class' ~ k ~ k] }}{% endfor %}", THREATS_48),
    ("{{ x[(x.format_map | string)[20]] }}", THREATS_48),
    ("{{ x|selectattr(key ~ '_x') }}", THREATS_48),
    ("{{ (key ~ '_').format(x) }}", THREATS_48),
]


def _rules(findings: list[Finding]) -> set[tuple[str, Severity]]:
    return {(f.rule, f.severity) for f in findings}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_real_world_shaped_templates_have_no_findings(name: str) -> None:
    assert check_template(BENIGN[name], location=WHERE) == []


def test_there_are_enough_benign_templates() -> None:
    assert len(BENIGN) >= 10


@pytest.mark.parametrize(("payload", "source"), SSTI_PAYLOADS)
def test_ssti_payloads_are_critical(payload: str, source: str) -> None:
    findings = check_template(payload, location=WHERE)
    assert (templates.SSTI, Severity.CRITICAL) in _rules(findings), source
    assert all(f.location == WHERE for f in findings)


def test_string_built_dunder_is_named() -> None:
    findings = check_template("{% set a = '_' ~ '_class_' ~ '_' %}{{ x[a] }}", location=WHERE)
    assert any("'__class__'" in f.message for f in findings)


@pytest.mark.parametrize(("payload", "source"), DYNAMIC_PAYLOADS)
def test_template_built_keys_are_blocked(payload: str, source: str) -> None:
    findings = check_template(payload, location=WHERE)
    blocking = {rule for rule, severity in _rules(findings) if severity >= Severity.HIGH}
    assert blocking & {templates.SSTI, templates.DYNAMIC}, source


@pytest.mark.parametrize(
    "template",
    [
        "{{ messages[loop.index0 - 1] }}",
        "{% for m in messages %}{{ messages[loop.index0 + 1]['role'] }}{% endfor %}",
        "{% set m = {'user': 'U'} %}{% for x in messages %}{{ m[x['role']] }}{% endfor %}",
        "{% for k, v in tool.parameters.properties | items %}{{ k }}{{ v['type'] }}{% endfor %}",
        "{% set ns = namespace(i=0) %}{% set ns.i = ns.i + 1 %}{{ messages[ns.i] }}",
        "{{ messages[-1]['content'][1:] }}{{ messages[(messages | length) // 2] }}",
        "{% macro f(m) %}{{ m['content'] }}{% endmacro %}{{ f(messages[0]) }}",
        "{{ x|attr('content') }}{{ x|map(attribute='content')|join }}",
        "{{ 'Hello {}'.format(name) }}",
    ],
)
def test_data_driven_lookups_are_allowed(template: str) -> None:
    assert check_template(template, location=WHERE) == []


@pytest.mark.parametrize(
    "template",
    ["{{ x", "{% for m in messages %}", "{% if %}{% endif %}", "{{ x | }}", "{% frobnicate %}"],
)
def test_unparseable_templates_are_malformed(template: str) -> None:
    findings = check_template(template, location=WHERE)
    assert _rules(findings) == {(templates.MALFORMED, Severity.HIGH)}


def test_too_deeply_nested_template_is_malformed_not_an_exception() -> None:
    deep = "{{ " + "(" * 20_000 + "x" + ")" * 20_000 + " }}"
    findings = check_template(deep, location=WHERE)
    assert _rules(findings) == {(templates.MALFORMED, Severity.HIGH)}


@pytest.mark.parametrize(
    "template",
    [
        "{% include 'secrets.txt' %}",
        "{% import 'macros.j2' as m %}",
        "{% from 'macros.j2' import x %}",
        "{% extends 'base.j2' %}",
    ],
)
def test_loading_other_templates_is_high(template: str) -> None:
    assert (templates.INCLUDE, Severity.HIGH) in _rules(check_template(template, location=WHERE))


def test_templates_are_parsed_never_compiled_or_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    import jinja2

    def refuse(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("check_template must never compile or render")

    monkeypatch.setattr(jinja2.Environment, "compile", refuse)
    monkeypatch.setattr(jinja2.Template, "render", refuse)
    assert check_template(CHATML, location=WHERE) == []
    assert check_template(SSTI_PAYLOADS[1][0], location=WHERE)


TEMPLATE_PIECES = [
    "{{", "}}", "{%", "%}", "{#", "#}", " set ", " for ", " in ", " endfor ", " if ", " endif ",
    " macro ", " endmacro ", "x", "ns", "messages", "[", "]", "(", ")", ".", "|", "~", "+", "%",
    "'_'", "'__class__'", "attr", "namespace", "cycler", "loop", "0", "=", ",", "join",
    "replace", "self", " is ", "string", ":",
]  # fmt: skip


@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")  # jinja's lexer
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TEMPLATE_PIECES) | st.text(max_size=5), max_size=40))
def test_any_text_gives_findings_not_exceptions(parts: list[str]) -> None:
    findings = check_template("".join(parts), location=WHERE)
    assert all(isinstance(f, Finding) for f in findings)
